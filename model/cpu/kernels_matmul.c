/* Matrix-product CPU kernels: Linear (x·Wᵀ + b) and multi-head attention, on single-threaded
 * OpenBLAS sgemm calls spread over the pool, so OpenBLAS threads and pool threads never
 * compete for cores (single-query attention runs its own loops). Not for: element-wise work
 * (kernels_elementwise.c). */
#include "kernels.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <string.h>

/* GEMM_BLOCK: column/row blocks handed to threads are multiples of this (kernels.h).
 * SERIAL_FLOPS: smaller products run on the caller alone (a thread hand-off costs more), unless
 * they have at most CPU_SMALL_M rows and more than SERIAL_WEIGHT_BYTES of weights: streaming
 * the weights bounds those (a decoding step), and two cores stream faster than one (measured:
 * a greedy caption's 30 steps 15% faster on an idle machine, slower on an oversubscribed one). */
enum { GEMM_BLOCK = CPU_LINEAR_BLOCK, SERIAL_FLOPS = 1 << 21, SERIAL_WEIGHT_BYTES = 1 << 17 };

/* OpenBLAS runs inside pool workers, one thread each. The setting is process-wide, so it is
 * checked before every product: another module of the process may have raised it since. */
static void blas_single_threaded(void) {
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

/* ---- Linear: y[M,N] (=|+=) x[M,K] · w[N,K]ᵀ + b[N] ---- */
typedef struct linear_job {
    float *y;
    const float *x, *w, *b;
    int ldy, ldx, M, K, N, accumulate, split_rows;
} linear_job;

static void add_bias(float *y, int ldy, const float *b, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * ldy;
        for (int c = 0; c < cols; c++) yr[c] += b[c];
    }
}

/* Items are blocks of GEMM_BLOCK rows (split_rows) or columns of y. */
static void linear_blocks(void *ctx, size_t begin, size_t end, int thread) {
    const linear_job *j = ctx;
    int total = j->split_rows ? j->M : j->N;
    int lo = (int)begin * GEMM_BLOCK, hi = (int)end * GEMM_BLOCK;
    if (hi > total) hi = total;
    int m0 = j->split_rows ? lo : 0, m = j->split_rows ? hi - lo : j->M;
    int n0 = j->split_rows ? 0 : lo, n = j->split_rows ? j->N : hi - lo;
    float *y = j->y + (size_t)m0 * j->ldy + n0;
    if (m <= CPU_SMALL_M) {
        cpu_gemm_small_m(y, j->ldy, j->x + (size_t)m0 * j->ldx, j->ldx, j->w + (size_t)n0 * j->K,
                         j->b ? j->b + n0 : NULL, m, j->K, n, j->accumulate);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, j->K, 1.0f,
                j->x + (size_t)m0 * j->ldx, j->ldx, j->w + (size_t)n0 * j->K, j->K,
                j->accumulate ? 1.0f : 0.0f, y, j->ldy);
    if (j->b) add_bias(y, j->ldy, j->b + n0, m, n);
}

size_t cpu_linear_grain(int M, int K, int N, size_t weight_bytes, size_t blocks) {
    int streaming = M <= CPU_SMALL_M && weight_bytes > SERIAL_WEIGHT_BYTES;
    return 2.0 * M * N * K < SERIAL_FLOPS && !streaming ? blocks : 1;
}

void cpu_linear(tl_pool *pool, float *y, int ldy, const float *x, int ldx, const float *w,
                const float *b, int M, int K, int N, int accumulate) {
    if (M <= 0 || N <= 0) return;
    blas_single_threaded();
    int threads = tl_pool_threads(pool);
    linear_job j = {y, x, w, b, ldy ? ldy : N, ldx ? ldx : K, M, K, N, accumulate, 0};
    /* Row halves when rows are many (OpenBLAS re-packs x for every column panel: measured
     * 96-99 vs 84 GFLOP/s per core at 1576 rows) or columns few; column halves otherwise
     * (93 vs 91 at 197 rows). */
    j.split_rows = M >= 512 * threads || (N < GEMM_BLOCK * 4 * threads && M > N);
    int total = j.split_rows ? M : N;
    size_t blocks = (size_t)(total + GEMM_BLOCK - 1) / GEMM_BLOCK;
    /* The pool's default chunking (about 4 chunks per thread) lets a thread that gets its core
     * sooner take more of the product; measured per core, 8 sgemm calls cost the same as 2. */
    size_t grain = cpu_linear_grain(M, K, N, (size_t)N * K * sizeof *w, blocks);
    tl_pool_for(pool, blocks, grain, linear_blocks, &j);
}

/* ---- attention: one item per (batch, head), query rows in tiles that fit the scratch ---- */
typedef struct attention_job {
    float *out, *probs, *scratch;
    const float *q, *k, *v;
    int ldq, ldkv, Tq, Tk, H, hd, causal;
    const int *key_len;
} attention_job;

/* Scores s[rows, ld] of query rows i0.. -> probabilities over each row's visible keys
 * (first `keys`, and causally at most i0+i+1), zeros up to column `width`. */
static void mask_softmax_rows(float *s, int ld, int rows, int i0, int keys, int causal, int width) {
    for (int i = 0; i < rows; i++) {
        float *row = s + (size_t)i * ld;
        int valid = causal && i0 + i + 1 < keys ? i0 + i + 1 : keys;
        if (valid > 0) cpu_softmax_row(row, valid);
        memset(row + valid, 0, (size_t)(width - valid) * sizeof(float));
    }
}

/* One (batch b, head h) pair, query rows [i0, i0+rows), scores in s (row stride ld). */
static void attention_tile(const attention_job *j, int b, int h, int i0, int rows, float *s,
                           int ld) {
    int keys = j->key_len ? j->key_len[b] : j->Tk;
    keys = keys < 0 ? 0 : (keys > j->Tk ? j->Tk : keys);
    int used = j->causal && i0 + rows < keys ? i0 + rows : keys; /* key columns any row sees */
    float scale = 1.0f / sqrtf((float)j->hd);
    const float *q = j->q + ((size_t)b * j->Tq + i0) * j->ldq + h * j->hd;
    const float *k = j->k + (size_t)b * j->Tk * j->ldkv + h * j->hd;
    const float *v = j->v + (size_t)b * j->Tk * j->ldkv + h * j->hd;
    float *o = j->out + ((size_t)b * j->Tq + i0) * j->H * j->hd + h * j->hd;
    if (used > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, used, j->hd, scale, q, j->ldq, k,
                    j->ldkv, 0.0f, s, ld);
    mask_softmax_rows(s, ld, rows, i0, keys, j->causal, j->probs ? j->Tk : used);
    if (used > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, j->hd, used, 1.0f, s, ld, v,
                    j->ldkv, 0.0f, o, j->H * j->hd);
    else
        for (int i = 0; i < rows; i++)
            memset(o + (size_t)i * j->H * j->hd, 0, (size_t)j->hd * sizeof(float));
}

/* ---- a single query row per batch item (a decoding step): every head in one pass over each
 * key and value row, which streams them from memory once instead of once per head ---- */
typedef float vfloat __attribute__((vector_size(64)));
enum { VLEN = 16 };

static inline vfloat load_v(const float *p) {
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* q · k over n channels. */
static float dot_channels(const float *q, const float *k, int n) {
    vfloat acc = {0};
    int c = 0;
    for (; c + VLEN <= n; c += VLEN) acc += load_v(q + c) * load_v(k + c);
    float dot = 0;
    for (int i = 0; i < VLEN; i++) dot += acc[i];
    for (; c < n; c++) dot += q[c] * k[c];
    return dot;
}

/* o[H·hd] = per head h, Σ_t p[h, t] · v_t (head h's channels), over t < used. */
static void weighted_value_rows(float *o, const float *p, const float *v, int ldv, int used, int H,
                                int hd) {
    memset(o, 0, (size_t)H * hd * sizeof *o);
    for (int t = 0; t < used; t++)
        for (int h = 0; h < H; h++) {
            const float *vt = v + (size_t)t * ldv + h * hd;
            float pt = p[(size_t)h * used + t];
            for (int c = 0; c < hd; c++) o[h * hd + c] += pt * vt[c];
        }
}

/* Batch item b: scores s[H, used] -> probabilities -> its output row. */
static void attention_one_query(const attention_job *j, int b, float *s) {
    int keys = j->key_len ? j->key_len[b] : j->Tk;
    keys = keys < 0 ? 0 : (keys > j->Tk ? j->Tk : keys);
    int used = j->causal && keys > 1 ? 1 : keys, H = j->H, hd = j->hd;
    float scale = 1.0f / sqrtf((float)hd);
    const float *q = j->q + (size_t)b * j->ldq, *k = j->k + (size_t)b * j->Tk * j->ldkv;
    const float *v = j->v + (size_t)b * j->Tk * j->ldkv;
    float *o = j->out + (size_t)b * H * hd;
    for (int t = 0; t < used; t++)
        for (int h = 0; h < H; h++)
            s[(size_t)h * used + t] =
                scale * dot_channels(q + h * hd, k + (size_t)t * j->ldkv + h * hd, hd);
    for (int h = 0; h < H && used > 0; h++) cpu_softmax_row(s + (size_t)h * used, used);
    weighted_value_rows(o, s, v, j->ldkv, used, H, hd);
}

static void attention_one_query_items(void *ctx, size_t begin, size_t end, int thread) {
    const attention_job *j = ctx;
    float *s = j->scratch + (size_t)thread * CPU_ATTENTION_SCRATCH_FLOATS;
    for (size_t b = begin; b < end; b++) attention_one_query(j, (int)b, s);
}

static void attention_heads(void *ctx, size_t begin, size_t end, int thread) {
    const attention_job *j = ctx;
    int tile = j->probs ? j->Tq : CPU_ATTENTION_SCRATCH_FLOATS / j->Tk;
    for (size_t item = begin; item < end; item++) {
        int b = (int)(item / (size_t)j->H), h = (int)(item % (size_t)j->H);
        for (int i0 = 0; i0 < j->Tq; i0 += tile) {
            int rows = j->Tq - i0 < tile ? j->Tq - i0 : tile;
            float *s = j->probs ? j->probs + (item * j->Tq + i0) * (size_t)j->Tk
                                : j->scratch + (size_t)thread * CPU_ATTENTION_SCRATCH_FLOATS;
            attention_tile(j, b, h, i0, rows, s, j->Tk);
        }
    }
}

void cpu_attention(tl_pool *pool, float *scratch, float *out, const float *q, int ldq,
                   const float *k, const float *v, int ldkv, int B, int Tq, int Tk, int H, int hd,
                   int causal, const int *key_len, float *probs) {
    assert(probs || Tk <= CPU_ATTENTION_MAX_KEYS); /* backend.h's contract; configs keep to it */
    blas_single_threaded();
    attention_job j = {out, probs, scratch, q, k, v, ldq, ldkv, Tq, Tk, H, hd, causal, key_len};
    if (Tq == 1 && !probs && (size_t)H * Tk <= CPU_ATTENTION_SCRATCH_FLOATS) {
        double flops = 4.0 * H * Tk * hd;
        size_t grain = flops < SERIAL_FLOPS ? (size_t)(SERIAL_FLOPS / flops) : 1;
        tl_pool_for(pool, (size_t)B, grain, attention_one_query_items, &j);
        return;
    }
    double flops_per_item = 4.0 * Tq * Tk * hd;
    size_t grain = flops_per_item < SERIAL_FLOPS ? (size_t)(SERIAL_FLOPS / flops_per_item) : 1;
    tl_pool_for(pool, (size_t)B * H, grain, attention_heads, &j);
}
