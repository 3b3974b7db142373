/* Exact flat scans: row blocks through sgemv/sgemm, k-lists by insertion. */
#include "flat_scan.h"

#include <cblas.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows per product (a 1 MiB block of 512-d vectors) and queries per pass over the rows. */
enum { BLOCK_ROWS = 512, QUERY_CHUNK = 64 };

int flat_view_of(FaissIndex *index, int dim, flat_view *view) {
    FaissIndexIDMap2 *map = faiss_IndexIDMap2_cast(index);
    FaissIndexFlat *flat = faiss_IndexFlat_cast(map ? faiss_IndexIDMap2_sub_index(map) : index);
    if (!flat || faiss_Index_metric_type(flat) != METRIC_INNER_PRODUCT) return 0;
    float *xb;
    idx_t *ids = NULL;
    size_t n_floats, n = (size_t)faiss_Index_ntotal(index);
    faiss_IndexFlat_xb(flat, &xb, &n_floats);
    if (map) faiss_IndexIDMap2_id_map(map, &ids, &n);
    if (n_floats != n * (size_t)dim || (int64_t)n != faiss_Index_ntotal(index)) return 0;
    *view = (flat_view){xb, ids, (int64_t)n, dim};
    return 1;
}

/* Inserts (score, id) into the descending k-list (s, ids) if it beats the last entry. */
static void offer(float *s, int64_t *ids, int k, float score, int64_t id) {
    if (!(score > s[k - 1])) return;
    int pos = k - 1;
    while (pos > 0 && score > s[pos - 1]) {
        s[pos] = s[pos - 1];
        ids[pos] = ids[pos - 1];
        pos--;
    }
    s[pos] = score;
    ids[pos] = id;
}

tl_status flat_scan(const flat_view *v, const float *q, int64_t nq, int k, float *scores,
                    int64_t *ids, tl_error *err) {
    for (int64_t i = 0; i < nq * k; i++) scores[i] = -INFINITY, ids[i] = -1;
    float *block = malloc((size_t)QUERY_CHUNK * BLOCK_ROWS * sizeof *block);
    if (!block) return tl_fail(err, TL_ERR_NOMEM, "search: out of memory");
    for (int64_t q0 = 0; q0 < nq; q0 += QUERY_CHUNK) {
        int m = nq - q0 < QUERY_CHUNK ? (int)(nq - q0) : QUERY_CHUNK;
        for (int64_t r0 = 0; r0 < v->n; r0 += BLOCK_ROWS) {
            int rows = v->n - r0 < BLOCK_ROWS ? (int)(v->n - r0) : BLOCK_ROWS;
            const float *x = v->vectors + (size_t)r0 * v->dim;
            /* block[m, rows] = q[q0 .. q0 + m) · x[rows]ᵀ; one query streams rows without
             * packing them. */
            if (m == 1)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, v->dim, 1.0f, x, v->dim,
                            q + q0 * v->dim, 1, 0.0f, block, 1);
            else
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, rows, v->dim, 1.0f,
                            q + q0 * v->dim, v->dim, x, v->dim, 0.0f, block, rows);
            for (int j = 0; j < m; j++) {
                float *s = scores + (q0 + j) * k;
                int64_t *id = ids + (q0 + j) * k;
                for (int r = 0; r < rows; r++)
                    offer(s, id, k, block[j * rows + r], v->ids ? v->ids[r0 + r] : r0 + r);
            }
        }
    }
    free(block);
    return TL_OK;
}
