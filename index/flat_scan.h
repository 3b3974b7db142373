/* Exact top-k by inner product over a faiss "IDMap2,Flat" index's stored vectors, read in place:
 * OpenBLAS products over blocks of rows, then a k-list per query. Debian's faiss 1.7.3 is built
 * for baseline x86-64: below 20 queries it scans with a scalar loop, and its BLAS path packs
 * every block of the database for a one-row product; a batch-1 scan of 100k vectors took
 * 11 ms there and is bound by memory bandwidth here.
 * Not for: IVF, HNSW or quantised storage (faiss searches those). */
#ifndef TL_FLAT_SCAN_H
#define TL_FLAT_SCAN_H

#include <faiss/c_api/Index_c.h>
#include <stdint.h>

#include "error.h"

typedef struct flat_view {
    const float *vectors; /* [n, dim] */
    const int64_t *ids;   /* [n], or NULL: a row's id is its number */
    int64_t n;
    int dim;
} flat_view;

/* 1 and *view when index is an inner-product IndexFlat of dim-wide vectors (an IVF's coarse
 * quantizer), alone or under an IDMap2; 0 otherwise. The view is valid while the index is not
 * modified. */
int flat_view_of(FaissIndex *index, int dim, flat_view *view);

/* Top-k of nq queries q[nq, dim] into scores[nq, k] (descending) and ids[nq, k]; slots past
 * the last vector hold id -1 and score -INFINITY. Single-threaded. */
tl_status flat_scan(const flat_view *view, const float *q, int64_t nq, int k, float *scores,
                    int64_t *ids, tl_error *err);

#endif
