/* FAME-ViL adapters (MODEL.md §2): the bottleneck adapter A(x) used by TSA and XAA, and the
 * cross-attention adapter XAA. Forward passes write or add into caller buffers through the
 * backend operation table. Not for: deciding where adapters attach (tasks.c). */
#ifndef TL_ADAPTER_H
#define TL_ADAPTER_H

#include "backend.h"
#include "tailor_params.h"

#define ADAPTER_LN_EPS 1e-5f

/* Floats of scratch adapter_forward needs for N rows. */
size_t adapter_scratch_floats(const adapter_params *a, int N);

/* out += A(x) = s·(W_up relu(W_down LN(x) + b_down) + b_up).
 * x is (N, D), out is (N, D) (may not alias x), scratch adapter_scratch_floats(a, N). */
void adapter_forward(tl_backend *be, const adapter_params *a, float *out, const float *x, int N,
                     float *scratch);

/* Floats of scratch xaa_kv_forward needs for N rows of y. */
size_t xaa_kv_scratch_floats(const xaa_params *x, int N);

/* K, V of the XAA over the other stream: c = LN_kv(y), K = c W_kᵀ + b_k, V = c W_vᵀ + b_v.
 * y is (N, Dc); k and v are (N, Dq); scratch xaa_kv_scratch_floats(x, N). */
void xaa_kv_forward(tl_backend *be, const xaa_params *x, float *k, float *v, const float *y, int N,
                    float *scratch);

/* Floats of scratch xaa_attend_forward needs for B·Tq query rows. */
size_t xaa_attend_scratch_floats(const xaa_params *x, int B, int Tq);

/* out += A_xaa(concat_h softmax(Q_h K_hᵀ/√d + mask) V_h), Q = LN_q(zp) W_qᵀ + b_q.
 * zp is (B, Tq, Dq); k, v are (B, Tk, Dq) from xaa_kv_forward; out is (B, Tq, Dq).
 * key_len: per batch item, keys >= key_len[b] excluded (NULL: all Tk). probs: NULL or
 * (B, H, Tq, Tk) attention probabilities. scratch xaa_attend_scratch_floats(x, B, Tq). */
void xaa_attend_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp,
                        const float *k, const float *v, int B, int Tq, int Tk, const int *key_len,
                        float *probs, float *scratch);

/* Floats of scratch xaa_forward needs. */
size_t xaa_scratch_floats(const xaa_params *x, int B, int Tq, int Tk);

/* out += XAA(zp, y): xaa_kv_forward on y (B, Tk, Dc), then xaa_attend_forward. */
void xaa_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp, const float *y,
                 int B, int Tq, int Tk, const int *key_len, float *probs, float *scratch);

#endif
