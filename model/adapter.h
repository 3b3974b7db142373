/* FAME-ViL adapters (MODEL.md §2): the bottleneck adapter A(x) used by TSA and XAA, and the
 * cross-attention adapter XAA. Forward passes write or add into caller buffers through the
 * backend operation table. Not for: deciding where adapters attach (tasks.c). */
#ifndef TL_ADAPTER_H
#define TL_ADAPTER_H

#include "backend.h"
#include "tailor_params.h"

#define ADAPTER_LN_EPS 1e-5f

/* What adapter_forward keeps for a backward pass (training): caller buffers of N rows, or NULL
 * on the inference path (then the scratch serves). */
typedef struct adapter_record {
    float *ln;  /* (N, D) LN(x) */
    float *pre; /* (N, r) down output (relu input) */
    float *hid; /* (N, r) relu output */
    float *up;  /* (N, D) up output, before the scale */
} adapter_record;

/* What the XAA keeps for a backward pass, with Tq query rows and Tk key rows per item. */
typedef struct xaa_record {
    float *ln_q;  /* (B·Tq, Dq) LN_q(zp) */
    float *q;     /* (B·Tq, Dq) */
    float *ln_kv; /* (B·Tk, Dc) LN_kv(y) */
    float *kv;    /* (B·Tk, 2·Dq): K | V */
    float *probs; /* (B, H, Tq, Tk) */
    float *att;   /* (B·Tq, Dq) heads concatenated */
    adapter_record adapter;
} xaa_record;

/* Floats of scratch adapter_forward needs for N rows. */
size_t adapter_scratch_floats(const adapter_params *a, int N);

/* out += A(x) = s·(W_up relu(W_down LN(x) + b_down) + b_up).
 * x is (N, D), out is (N, D) (may not alias x), scratch adapter_scratch_floats(a, N).
 * rec: NULL, or the intermediates are kept there (then scratch may be NULL). */
void adapter_forward(tl_backend *be, const adapter_params *a, float *out, const float *x, int N,
                     const adapter_record *rec, float *scratch);

/* Floats of scratch xaa_kv_forward needs for N rows of y. */
size_t xaa_kv_scratch_floats(const xaa_params *x, int N);

/* K, V of the XAA over the other stream: c = LN_kv(y), K = c W_kᵀ + b_k, V = c W_vᵀ + b_v.
 * y is (N, Dc); k and v are N rows of Dq at row stride ldkv (Dq for separate buffers, 2·Dq for
 * K | V interleaved). ln_kv: NULL (scratch xaa_kv_scratch_floats(x, N) serves), or (N, Dc)
 * keeping c (then scratch may be NULL). */
void xaa_kv_forward(tl_backend *be, const xaa_params *x, float *k, float *v, int ldkv,
                    const float *y, int N, float *ln_kv, float *scratch);

/* Floats of scratch xaa_attend_forward needs for B·Tq query rows. */
size_t xaa_attend_scratch_floats(const xaa_params *x, int B, int Tq);

/* out += A_xaa(concat_h softmax(Q_h K_hᵀ/√d + mask) V_h), Q = LN_q(zp) W_qᵀ + b_q.
 * zp is (B, Tq, Dq); k, v are (B, Tk) rows of stride ldkv from xaa_kv_forward; out is
 * (B, Tq, Dq). key_len: per batch item, keys >= key_len[b] excluded (NULL: all Tk). probs:
 * NULL or (B, H, Tq, Tk) attention probabilities. scratch xaa_attend_scratch_floats(x, B, Tq).
 * rec: NULL, or ln_q, q, probs (instead of probs), att and the adapter's intermediates are
 * kept there (then scratch may be NULL). */
void xaa_attend_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp,
                        const float *k, const float *v, int ldkv, int B, int Tq, int Tk,
                        const int *key_len, float *probs, const xaa_record *rec, float *scratch);

/* Floats of scratch xaa_forward needs. */
size_t xaa_scratch_floats(const xaa_params *x, int B, int Tq, int Tk);

/* out += XAA(zp, y): xaa_kv_forward on y (B, Tk, Dc) with K | V interleaved, then
 * xaa_attend_forward. rec: NULL, or everything a backward reads is kept there (then probs is
 * rec->probs and scratch may be NULL). */
void xaa_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp, const float *y,
                 int B, int Tq, int Tk, const int *key_len, float *probs, const xaa_record *rec,
                 float *scratch);

#endif
