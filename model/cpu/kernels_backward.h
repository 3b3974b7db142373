/* CPU kernels of the backward (training) operations of backend.h; each accumulates into its
 * gradient outputs and parallelises over rows, heads or weight rows on a tl_pool.
 * Not for: forward kernels (kernels.h) or model logic. */
#ifndef TL_CPU_KERNELS_BACKWARD_H
#define TL_CPU_KERNELS_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

#include "threadpool.h"

void cpu_linear_backward(tl_pool *pool, float *dx, int lddx, float *dw, float *db, const float *dy,
                         int lddy, const float *x, int ldx, const float *w, int M, int K, int N);
void cpu_layernorm_backward(tl_pool *pool, float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *w, int rows, int dim, float eps);
void cpu_quick_gelu_backward(tl_pool *pool, float *dx, const float *dy, const float *x, size_t n);
void cpu_relu_backward(tl_pool *pool, float *dx, const float *dy, const float *y, size_t n);
void cpu_softmax_backward(tl_pool *pool, float *dx, const float *dy, const float *p, int rows,
                          int n);
/* scratch: tl_pool_threads(pool) × CPU_ATTENTION_SCRATCH_FLOATS floats (the forward's). */
void cpu_attention_backward(tl_pool *pool, float *scratch, float *dq, float *dk, float *dv,
                            const float *dout, const float *q, int ldq, const float *k,
                            const float *v, int ldkv, const float *probs, int B, int Tq, int Tk,
                            int H, int hd);
void cpu_cross_entropy(tl_pool *pool, float *loss, const float *logits, const int *labels, int rows,
                       int n);
void cpu_cross_entropy_backward(tl_pool *pool, float *dlogits, const float *logits,
                                const int *labels, float scale, int rows, int n);
void cpu_soft_cross_entropy(tl_pool *pool, float *loss, const float *logits, const float *q,
                            int rows, int n);
void cpu_soft_cross_entropy_backward(tl_pool *pool, float *dlogits, const float *logits,
                                     const float *q, float scale, int rows, int n);
void cpu_scatter_add_rows(tl_pool *pool, float *dtable, const float *dy, const int32_t *rows, int n,
                          int dim);
void cpu_sum_rows_periodic(tl_pool *pool, float *daddend, const float *dy, int n, int period,
                           int dim);
void cpu_l2_normalize_backward(tl_pool *pool, float *dx, const float *dy, const float *x, int rows,
                               int dim);

#endif
