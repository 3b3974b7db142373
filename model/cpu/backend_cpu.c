/* The CPU backend: fills the operation table of backend.h with the kernels of kernels_*.c on a
 * thread pool. OpenBLAS runs single-threaded inside pool workers (kernels_matmul.c), so the
 * two never oversubscribe the cores. Not for: kernel code (kernels_*.c). */
#include <stdlib.h>
#include <unistd.h>

#include "backend.h"
#include "kernels.h"
#include "kernels_backward.h"
#include "threadpool.h"

typedef struct cpu_state {
    tl_pool *pool;
    float *attention_scratch; /* threads × CPU_ATTENTION_SCRATCH_FLOATS */
} cpu_state;

static tl_pool *pool_of(tl_backend *be) {
    return ((cpu_state *)be->impl)->pool;
}

static void op_linear(tl_backend *be, float *y, int ldy, const float *x, int ldx, const float *w,
                      const float *b, int M, int K, int N, int accumulate) {
    cpu_linear(pool_of(be), y, ldy, x, ldx, w, b, M, K, N, accumulate);
}

static void op_linear_reproducible(tl_backend *be, float *y, int ldy, const float *x, int ldx,
                                   const float *w, const float *b, int M, int K, int N,
                                   int accumulate) {
    cpu_linear_reproducible(pool_of(be), y, ldy, x, ldx, w, b, M, K, N, accumulate);
}

static void op_layernorm(tl_backend *be, float *y, const float *x, const float *w, const float *b,
                         int rows, int dim, float eps) {
    cpu_layernorm(pool_of(be), y, x, w, b, rows, dim, eps);
}

static void op_quick_gelu(tl_backend *be, float *x, size_t n) {
    cpu_quick_gelu(pool_of(be), x, n);
}

static void op_relu(tl_backend *be, float *x, size_t n) {
    cpu_relu(pool_of(be), x, n);
}

static void op_attention(tl_backend *be, float *out, const float *q, int ldq, const float *k,
                         const float *v, int ldkv, int B, int Tq, int Tk, int H, int hd, int causal,
                         const int *key_len, float *probs) {
    cpu_state *st = be->impl;
    cpu_attention(st->pool, st->attention_scratch, out, q, ldq, k, v, ldkv, B, Tq, Tk, H, hd,
                  causal, key_len, probs);
}

static void op_softmax(tl_backend *be, float *x, int rows, int n) {
    cpu_softmax(pool_of(be), x, rows, n);
}

static void op_axpy(tl_backend *be, float *y, const float *x, float s, size_t n) {
    cpu_axpy(pool_of(be), y, x, s, n);
}

static void op_gather_rows(tl_backend *be, float *y, const float *table, const int32_t *rows, int n,
                           int dim) {
    cpu_gather_rows(pool_of(be), y, table, rows, n, dim);
}

static void op_add_rows_periodic(tl_backend *be, float *y, const float *addend, int n, int period,
                                 int dim) {
    cpu_add_rows_periodic(pool_of(be), y, addend, n, period, dim);
}

static void op_im2col_patches(tl_backend *be, float *out, const float *pixels, int B, int C, int S,
                              int p, int lead) {
    cpu_im2col_patches(pool_of(be), out, pixels, B, C, S, p, lead);
}

static void op_l2_normalize(tl_backend *be, float *x, int rows, int dim) {
    cpu_l2_normalize(pool_of(be), x, rows, dim);
}

/* ---- backward operations (kernels_backward.c) ---- */
static void op_linear_backward(tl_backend *be, float *dx, int lddx, float *dw, float *db,
                               const float *dy, int lddy, const float *x, int ldx, const float *w,
                               int M, int K, int N) {
    cpu_linear_backward(pool_of(be), dx, lddx, dw, db, dy, lddy, x, ldx, w, M, K, N);
}

static void op_layernorm_backward(tl_backend *be, float *dx, float *dw, float *db, const float *dy,
                                  const float *x, const float *w, int rows, int dim, float eps) {
    cpu_layernorm_backward(pool_of(be), dx, dw, db, dy, x, w, rows, dim, eps);
}

static void op_quick_gelu_backward(tl_backend *be, float *dx, const float *dy, const float *x,
                                   size_t n) {
    cpu_quick_gelu_backward(pool_of(be), dx, dy, x, n);
}

static void op_relu_backward(tl_backend *be, float *dx, const float *dy, const float *y, size_t n) {
    cpu_relu_backward(pool_of(be), dx, dy, y, n);
}

static void op_softmax_backward(tl_backend *be, float *dx, const float *dy, const float *p,
                                int rows, int n) {
    cpu_softmax_backward(pool_of(be), dx, dy, p, rows, n);
}

static void op_attention_backward(tl_backend *be, float *dq, float *dk, float *dv,
                                  const float *dout, const float *q, int ldq, const float *k,
                                  const float *v, int ldkv, const float *probs, int B, int Tq,
                                  int Tk, int H, int hd) {
    cpu_state *st = be->impl;
    cpu_attention_backward(st->pool, st->attention_scratch, dq, dk, dv, dout, q, ldq, k, v, ldkv,
                           probs, B, Tq, Tk, H, hd);
}

static void op_cross_entropy(tl_backend *be, float *loss, const float *logits, const int *labels,
                             int rows, int n) {
    cpu_cross_entropy(pool_of(be), loss, logits, labels, rows, n);
}

static void op_cross_entropy_backward(tl_backend *be, float *dlogits, const float *logits,
                                      const int *labels, float scale, int rows, int n) {
    cpu_cross_entropy_backward(pool_of(be), dlogits, logits, labels, scale, rows, n);
}

static void op_soft_cross_entropy(tl_backend *be, float *loss, const float *logits, const float *q,
                                  int rows, int n) {
    cpu_soft_cross_entropy(pool_of(be), loss, logits, q, rows, n);
}

static void op_soft_cross_entropy_backward(tl_backend *be, float *dlogits, const float *logits,
                                           const float *q, float scale, int rows, int n) {
    cpu_soft_cross_entropy_backward(pool_of(be), dlogits, logits, q, scale, rows, n);
}

static void op_scatter_add_rows(tl_backend *be, float *dtable, const float *dy, const int32_t *rows,
                                int n, int dim) {
    cpu_scatter_add_rows(pool_of(be), dtable, dy, rows, n, dim);
}

static void op_sum_rows_periodic(tl_backend *be, float *daddend, const float *dy, int n, int period,
                                 int dim) {
    cpu_sum_rows_periodic(pool_of(be), daddend, dy, n, period, dim);
}

static void op_l2_normalize_backward(tl_backend *be, float *dx, const float *dy, const float *x,
                                     int rows, int dim) {
    cpu_l2_normalize_backward(pool_of(be), dx, dy, x, rows, dim);
}

/* ---- reduced-precision decoding (kernels_bf16.c) ---- */
static void op_to_bf16(tl_backend *be, tl_bf16 *dst, const float *src, size_t n) {
    cpu_to_bf16(pool_of(be), dst, src, n);
}

static void op_linear_bf16(tl_backend *be, float *y, int ldy, const float *x, int ldx,
                           const tl_bf16 *w, const float *b, int M, int K, int N, int accumulate) {
    cpu_linear_bf16(pool_of(be), y, ldy, x, ldx, w, b, M, K, N, accumulate);
}

/* 64-byte aligned host memory; NULL on failure. */
static void *op_alloc(tl_backend *be, size_t bytes) {
    return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
}

static void op_free(tl_backend *be, void *p) {
    free(p);
}

static void op_destroy(tl_backend *be) {
    if (!be) return;
    cpu_state *st = be->impl;
    if (st) {
        tl_pool_destroy(st->pool);
        free(st->attention_scratch);
        free(st);
    }
    free(be);
}

static const tl_backend cpu_table = {
    .name = "cpu",
    .linear = op_linear,
    .linear_reproducible = op_linear_reproducible,
    .layernorm = op_layernorm,
    .quick_gelu = op_quick_gelu,
    .relu = op_relu,
    .attention = op_attention,
    .softmax = op_softmax,
    .axpy = op_axpy,
    .gather_rows = op_gather_rows,
    .add_rows_periodic = op_add_rows_periodic,
    .im2col_patches = op_im2col_patches,
    .l2_normalize = op_l2_normalize,
    .alloc = op_alloc,
    .free = op_free,
    .destroy = op_destroy,
    /* backward operations */
    .linear_backward = op_linear_backward,
    .layernorm_backward = op_layernorm_backward,
    .quick_gelu_backward = op_quick_gelu_backward,
    .relu_backward = op_relu_backward,
    .softmax_backward = op_softmax_backward,
    .attention_backward = op_attention_backward,
    .cross_entropy = op_cross_entropy,
    .cross_entropy_backward = op_cross_entropy_backward,
    .soft_cross_entropy = op_soft_cross_entropy,
    .soft_cross_entropy_backward = op_soft_cross_entropy_backward,
    .scatter_add_rows = op_scatter_add_rows,
    .sum_rows_periodic = op_sum_rows_periodic,
    .l2_normalize_backward = op_l2_normalize_backward,
    /* reduced-precision decoding */
    .to_bf16 = op_to_bf16,
    .linear_bf16 = op_linear_bf16,
};

tl_status tl_backend_cpu_create(tl_backend **out, int n_threads, tl_error *err) {
    *out = NULL;
    if (n_threads < 0 || n_threads > 1024)
        return tl_fail(err, TL_ERR_INVALID, "cpu backend: thread count %d outside 0..1024",
                       n_threads);
    if (n_threads == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = online > 0 ? (int)online : 1;
    }
    tl_backend *be = malloc(sizeof *be);
    cpu_state *st = calloc(1, sizeof *st);
    if (!be || !st) {
        free(be);
        free(st);
        return tl_fail(err, TL_ERR_NOMEM, "cpu backend: out of memory");
    }
    *be = cpu_table;
    be->impl = st;
    st->pool = tl_pool_create(n_threads);
    st->attention_scratch =
        aligned_alloc(64, (size_t)n_threads * CPU_ATTENTION_SCRATCH_FLOATS * sizeof(float));
    if (!st->pool || !st->attention_scratch) {
        op_destroy(be);
        return tl_fail(err, TL_ERR_NOMEM, "cpu backend: cannot start %d threads", n_threads);
    }
    *out = be;
    return TL_OK;
}
