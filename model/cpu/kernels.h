/* CPU kernels behind the backend table (model/backend.h gives each operation's contract);
 * each parallelises over rows, heads or GEMM column blocks on a tl_pool.
 * Not for: model logic; backend_cpu.c wires these into the table. */
#ifndef TL_CPU_KERNELS_H
#define TL_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "threadpool.h"

/* Per-thread score scratch of the attention kernel, allocated by the backend (threads ×
 * this many floats); it bounds the key count the CPU attention accepts. */
#define CPU_ATTENTION_SCRATCH_FLOATS (1 << 16)
#define CPU_ATTENTION_MAX_KEYS       CPU_ATTENTION_SCRATCH_FLOATS

void cpu_linear(tl_pool *pool, float *y, int ldy, const float *x, int ldx, const float *w,
                const float *b, int M, int K, int N, int accumulate);
/* Output columns (or rows) of a Linear go to pool threads in blocks of this many. */
#define CPU_LINEAR_BLOCK 16
/* The tl_pool_for grain of a Linear y[M,N] = x[M,K]·wᵀ, whose weights take weight_bytes, split
 * into `blocks` blocks: all of them (the caller alone) when the product is too small to share. */
size_t cpu_linear_grain(int M, int K, int N, size_t weight_bytes, size_t blocks);
/* Products with at most this many rows use cpu_gemm_small_m instead of sgemm (measured: 2-5×
 * faster at 1-2 rows, even at 4, slower from 8 rows when the weights stream from memory). */
#define CPU_SMALL_M 4

/* Single-threaded y[M,N] (=|+=) x[M,K]·w[N,K]ᵀ + b (b may be NULL) for M ≤ CPU_SMALL_M. */
void cpu_gemm_small_m(float *y, int ldy, const float *x, int ldx, const float *w, const float *b,
                      int M, int K, int N, int accumulate);

/* linear_reproducible of backend.h: y[M,N] (=|+=) x[M,K]·w[N,K]ᵀ + b (b may be NULL), each
 * element summed in an order set by K alone (kernels_reproducible.c). */
void cpu_linear_reproducible(tl_pool *pool, float *y, int ldy, const float *x, int ldx,
                             const float *w, const float *b, int M, int K, int N, int accumulate);

/* scratch: tl_pool_threads(pool) × CPU_ATTENTION_SCRATCH_FLOATS floats; Tk ≤
 * CPU_ATTENTION_MAX_KEYS. */
void cpu_attention(tl_pool *pool, float *scratch, float *out, const float *q, int ldq,
                   const float *k, const float *v, int ldkv, int B, int Tq, int Tk, int H, int hd,
                   int causal, const int *key_len, float *probs);

void cpu_layernorm(tl_pool *pool, float *y, const float *x, const float *w, const float *b,
                   int rows, int dim, float eps);
void cpu_quick_gelu(tl_pool *pool, float *x, size_t n);
void cpu_relu(tl_pool *pool, float *x, size_t n);
void cpu_softmax(tl_pool *pool, float *x, int rows, int n);
void cpu_axpy(tl_pool *pool, float *y, const float *x, float s, size_t n);
void cpu_gather_rows(tl_pool *pool, float *y, const float *table, const int32_t *rows, int n,
                     int dim);
void cpu_add_rows_periodic(tl_pool *pool, float *y, const float *addend, int n, int period,
                           int dim);
void cpu_im2col_patches(tl_pool *pool, float *out, const float *pixels, int B, int C, int S, int p,
                        int lead);
void cpu_l2_normalize(tl_pool *pool, float *x, int rows, int dim);

/* ---- bfloat16 (kernels_bf16.c): bfloat16 is the upper half of an IEEE fp32, held in a
 * uint16_t ---- */

/* x rounded to bfloat16: to nearest, ties to even; NaN stays NaN. */
uint16_t cpu_bf16_round(float x);
/* dst[i] = cpu_bf16_round(src[i]) for i < n. */
void cpu_to_bf16(tl_pool *pool, uint16_t *dst, const float *src, size_t n);
/* y[M,N] (=|+=) x[M,K]·w[N,K]ᵀ + b (b may be NULL) with w in bfloat16: x is rounded to
 * bfloat16 and the exact products summed in fp32 (AVX512_BF16 dot products where compiled
 * for). ldx, ldy: row strides (0 = K and N). Each block of weight rows is read from memory
 * once for all M rows, so it suits few rows (decoding). */
void cpu_linear_bf16(tl_pool *pool, float *y, int ldy, const float *x, int ldx, const uint16_t *w,
                     const float *b, int M, int K, int N, int accumulate);

/* In place numerically stable softmax of x[0..n); shared by softmax and attention. */
void cpu_softmax_row(float *x, int n);

#endif
