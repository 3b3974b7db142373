/* The backend operation table: the numerical operations the model is written in, so model
 * code exists once and runs on any backend. Buffers passed to ops are backend memory (plain
 * host memory on the CPU backend). Shapes are row-major; comments give them.
 * Backends: cpu (OpenBLAS sgemm + own kernels on a thread pool); cuda (slot reserved). */
#ifndef TL_BACKEND_H
#define TL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct tl_backend tl_backend;

/* bfloat16: the upper 16 bits of an IEEE fp32 (reduced-precision decoding weights). */
typedef uint16_t tl_bf16;

struct tl_backend {
    const char *name;
    void *impl; /* backend-private state (thread pool, library handles) */

    /* y[M,N] = x[M,K] · w[N,K]ᵀ + b[N]   (PyTorch Linear layout; b may be NULL).
     * accumulate != 0: y += instead of y =. ldx/ldy: row strides of x and y in floats
     * (0 = K and N), so callers can read or write column slices of wider buffers. */
    void (*linear)(tl_backend *be, float *y, int ldy, const float *x, int ldx, const float *w,
                   const float *b, int M, int K, int N, int accumulate);

    /* linear with reproducible rounding: y[i,n] = dot(x_i, w_n) + b[n] (y[i,n] += that when
     * accumulate), the dot summed in an order that depends on K alone, never on M, N, the
     * strides, the thread count or the machine's vector width. A row of x gives bit-for-bit
     * the same outputs whether it runs alone or among others (session turns in batches). */
    void (*linear_reproducible)(tl_backend *be, float *y, int ldy, const float *x, int ldx,
                                const float *w, const float *b, int M, int K, int N,
                                int accumulate);

    /* y[rows,dim] = (x - mean) / sqrt(var + eps) * w + b, biased variance; y may equal x. */
    void (*layernorm)(tl_backend *be, float *y, const float *x, const float *w, const float *b,
                      int rows, int dim, float eps);

    /* In place: x = x * sigmoid(1.702 x). */
    void (*quick_gelu)(tl_backend *be, float *x, size_t n);

    /* In place: x = max(x, 0). */
    void (*relu)(tl_backend *be, float *x, size_t n);

    /* Multi-head scaled dot-product attention, heads split as contiguous channel blocks
     * (head h owns channels [h*hd, (h+1)*hd)), scores scaled by hd^-0.5.
     * q: B×Tq rows of stride ldq (head channels at q[row*ldq + h*hd]);
     * k, v: B×Tk rows of stride ldkv; out: B×Tq rows of H*hd floats (contiguous).
     * causal: key j > query i excluded. key_len: per batch item, keys >= key_len[b] excluded
     * (NULL: all Tk keys). probs: if not NULL, [B,H,Tq,Tk] receives the probabilities.
     * A query row with no visible key outputs zeros. Tk ≤ 65536 (the CPU backend's limit). */
    void (*attention)(tl_backend *be, float *out, const float *q, int ldq, const float *k,
                      const float *v, int ldkv, int B, int Tq, int Tk, int H, int hd, int causal,
                      const int *key_len, float *probs);

    /* In place row softmax of x[rows, n]. */
    void (*softmax)(tl_backend *be, float *x, int rows, int n);

    /* y[i] += s * x[i]. */
    void (*axpy)(tl_backend *be, float *y, const float *x, float s, size_t n);

    /* y[n,dim]: row i = table[rows[i]] (rows already validated by the caller). */
    void (*gather_rows)(tl_backend *be, float *y, const float *table, const int32_t *rows, int n,
                        int dim);

    /* y[n,dim]: row i += addend[i % period] (addend [period,dim]; e.g. position embeddings). */
    void (*add_rows_periodic)(tl_backend *be, float *y, const float *addend, int n, int period,
                              int dim);

    /* Conv patches as rows: pixels [B,C,S,S] -> out [B, lead + (S/p)^2, C*p*p], patch g of
     * image b (row-major over the patch grid) in (c, ky, kx) order; the first `lead` rows of
     * each image are zero (lead = 1 leaves a row for the class token). */
    void (*im2col_patches)(tl_backend *be, float *out, const float *pixels, int B, int C, int S,
                           int p, int lead);

    /* In place: each row of x[rows,dim] divided by its L2 norm (zero rows stay zero). */
    void (*l2_normalize)(tl_backend *be, float *x, int rows, int dim);

    /* Backend memory. alloc returns NULL on failure; memory is 64-byte aligned. */
    void *(*alloc)(tl_backend *be, size_t bytes);
    void (*free)(tl_backend *be, void *p);

    void (*destroy)(tl_backend *be);

    /* ---- Backward operations for training (added after the forward table; every backend
     * provides them). Each accumulates (+=) into its gradient outputs; the caller zeroes them.
     * Masked attention keys need no mask here: their saved probabilities are exactly 0. ---- */

    /* For y[M,N] = x[M,K]·w[N,K]ᵀ + b: dx[M,K] += dy·w, dw[N,K] += dyᵀ·x, db[N] += Σ_rows dy.
     * dx, dw, db may each be NULL. lddx, lddy, ldx: row strides in floats (0 = dense). */
    void (*linear_backward)(tl_backend *be, float *dx, int lddx, float *dw, float *db,
                            const float *dy, int lddy, const float *x, int ldx, const float *w,
                            int M, int K, int N);

    /* LayerNorm backward from its input x[rows,dim] and weight w: dx += , dw += , db +=
     * (dw, db may be NULL). dx must not alias x or dy. */
    void (*layernorm_backward)(tl_backend *be, float *dx, float *dw, float *db, const float *dy,
                               const float *x, const float *w, int rows, int dim, float eps);

    /* dx[i] += dy[i] · quick_gelu'(x[i]), x = the activation's input. */
    void (*quick_gelu_backward)(tl_backend *be, float *dx, const float *dy, const float *x,
                                size_t n);

    /* dx[i] += dy[i] where y[i] > 0 (y = relu's output, or its input: same sign test). */
    void (*relu_backward)(tl_backend *be, float *dx, const float *dy, const float *y, size_t n);

    /* Row softmax backward from the saved probabilities p[rows,n]: dx += p ⊙ (dy − Σ dy·p). */
    void (*softmax_backward)(tl_backend *be, float *dx, const float *dy, const float *p, int rows,
                             int n);

    /* Backward of `attention` from its saved probs [B,H,Tq,Tk] (which carry the causal and
     * key_len masks as zeros). dout [B,Tq,H*hd] contiguous; q, dq rows of stride ldq; k, v, dk,
     * dv rows of stride ldkv (dq, dk, dv accumulate; dk and dv may alias one buffer's slices). */
    void (*attention_backward)(tl_backend *be, float *dq, float *dk, float *dv, const float *dout,
                               const float *q, int ldq, const float *k, const float *v, int ldkv,
                               const float *probs, int B, int Tq, int Tk, int H, int hd);

    /* Cross-entropy with logits [rows,n] (row stride n) and class labels (label < 0: row
     * ignored). loss[r] = −log softmax(logits_r)[label_r] (0 for ignored rows). */
    void (*cross_entropy)(tl_backend *be, float *loss, const float *logits, const int *labels,
                          int rows, int n);
    /* dlogits[r] += scale · (softmax(logits_r) − onehot(label_r)) for rows with label ≥ 0. */
    void (*cross_entropy_backward)(tl_backend *be, float *dlogits, const float *logits,
                                   const int *labels, float scale, int rows, int n);

    /* Soft-target cross-entropy: loss[r] = −Σ_j q[r,j] · log softmax(logits_r)_j. */
    void (*soft_cross_entropy)(tl_backend *be, float *loss, const float *logits, const float *q,
                               int rows, int n);
    /* dlogits[r] += scale · (softmax(logits_r) · Σ_j q[r,j] − q[r]). */
    void (*soft_cross_entropy_backward)(tl_backend *be, float *dlogits, const float *logits,
                                        const float *q, float scale, int rows, int n);

    /* Backward of gather_rows: dtable[rows[i]] += dy[i] for i < n (dtable [?,dim]). */
    void (*scatter_add_rows)(tl_backend *be, float *dtable, const float *dy, const int32_t *rows,
                             int n, int dim);

    /* Backward of add_rows_periodic: daddend[i % period] += dy[i] for i < n. */
    void (*sum_rows_periodic)(tl_backend *be, float *daddend, const float *dy, int n, int period,
                              int dim);

    /* Backward of l2_normalize from its input x[rows,dim]: dx += (dy − y·(y·dy)) / ‖x‖,
     * y = x/‖x‖ (zero rows get no gradient). */
    void (*l2_normalize_backward)(tl_backend *be, float *dx, const float *dy, const float *x,
                                  int rows, int dim);

    /* ---- Reduced-precision decoding (tl_model_opts.decode_bf16; every backend provides
     * them) ---- */

    /* dst[i] = src[i] rounded to bfloat16 (to nearest, ties to even; NaN stays NaN). */
    void (*to_bf16)(tl_backend *be, tl_bf16 *dst, const float *src, size_t n);

    /* As linear, with w[N,K] in bfloat16 (to_bf16's output): x is rounded to bfloat16 too and
     * the products are summed in fp32. Built for few rows (a decoding step), where streaming
     * the weights bounds the time and half the bytes take about half of it. */
    void (*linear_bf16)(tl_backend *be, float *y, int ldy, const float *x, int ldx,
                        const tl_bf16 *w, const float *b, int M, int K, int N, int accumulate);
};

/* be->linear_bf16 on w_bf16 when that copy exists, else be->linear on w (same arguments). */
static inline void tl_linear_prefer_bf16(tl_backend *be, float *y, int ldy, const float *x, int ldx,
                                         const float *w, const tl_bf16 *w_bf16, const float *b,
                                         int M, int K, int N, int accumulate) {
    if (w_bf16)
        be->linear_bf16(be, y, ldy, x, ldx, w_bf16, b, M, K, N, accumulate);
    else
        be->linear(be, y, ldy, x, ldx, w, b, M, K, N, accumulate);
}

/* CPU backend with n_threads workers (0 = online CPUs). Owned by the caller (be->destroy). */
tl_status tl_backend_cpu_create(tl_backend **out, int n_threads, tl_error *err);

/* CUDA backend: this build has none yet; returns TL_ERR_UNSUPPORTED naming the reason. */
tl_status tl_backend_cuda_create(tl_backend **out, int device, tl_error *err);

#endif
