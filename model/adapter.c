/* Bottleneck adapter and cross-attention adapter forward passes (MODEL.md §2), written once
 * in backend operations. Not for: layer wiring or modes (tasks.c). */
#include "adapter.h"

size_t adapter_scratch_floats(const adapter_params *a, int N) {
    return (size_t)N * (size_t)(a->dim + a->rank);
}

void adapter_forward(tl_backend *be, const adapter_params *a, float *out, const float *x, int N,
                     float *scratch) {
    int D = a->dim, r = a->rank;
    float *xn = scratch;                // (N, D): LN(x), later W_up h + b_up
    float *h = scratch + (size_t)N * D; // (N, r)
    be->layernorm(be, xn, x, a->ln_w, a->ln_b, N, D, ADAPTER_LN_EPS);
    be->linear(be, h, 0, xn, 0, a->down_w, a->down_b, N, D, r, 0);
    be->relu(be, h, (size_t)N * r);
    be->linear(be, xn, 0, h, 0, a->up_w, a->up_b, N, r, D, 0);
    be->axpy(be, out, xn, a->scale, (size_t)N * D);
}

size_t xaa_kv_scratch_floats(const xaa_params *x, int N) {
    return (size_t)N * x->dc;
}

void xaa_kv_forward(tl_backend *be, const xaa_params *x, float *k, float *v, const float *y, int N,
                    float *scratch) {
    float *c = scratch; // (N, Dc)
    be->layernorm(be, c, y, x->ln_kv_w, x->ln_kv_b, N, x->dc, ADAPTER_LN_EPS);
    be->linear(be, k, 0, c, 0, x->k_w, x->k_b, N, x->dc, x->dq, 0);
    be->linear(be, v, 0, c, 0, x->v_w, x->v_b, N, x->dc, x->dq, 0);
}

size_t xaa_attend_scratch_floats(const xaa_params *x, int B, int Tq) {
    size_t rows = (size_t)B * Tq;
    return rows * x->dq + adapter_scratch_floats(&x->adapter, (int)rows);
}

void xaa_attend_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp,
                        const float *k, const float *v, int B, int Tq, int Tk, const int *key_len,
                        float *probs, float *scratch) {
    int rows = B * Tq, D = x->dq;
    float *att = scratch;                  // (B, Tq, Dq): LN_q(zp), later the attention output
    float *q = scratch + (size_t)rows * D; // (B, Tq, Dq); then the adapter's scratch
    be->layernorm(be, att, zp, x->ln_q_w, x->ln_q_b, rows, D, ADAPTER_LN_EPS);
    be->linear(be, q, 0, att, 0, x->q_w, x->q_b, rows, D, D, 0);
    be->attention(be, att, q, D, k, v, D, B, Tq, Tk, x->heads, D / x->heads, 0, key_len, probs);
    adapter_forward(be, &x->adapter, out, att, rows, q);
}

size_t xaa_scratch_floats(const xaa_params *x, int B, int Tq, int Tk) {
    size_t kv_rows = (size_t)B * Tk, kv_scratch = xaa_kv_scratch_floats(x, B * Tk);
    size_t attend_scratch = xaa_attend_scratch_floats(x, B, Tq);
    return 2 * kv_rows * x->dq + (kv_scratch > attend_scratch ? kv_scratch : attend_scratch);
}

void xaa_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp, const float *y,
                 int B, int Tq, int Tk, const int *key_len, float *probs, float *scratch) {
    size_t kv = (size_t)B * Tk * x->dq;
    float *k = scratch, *v = scratch + kv, *rest = scratch + 2 * kv; // k, v: (B, Tk, Dq)
    xaa_kv_forward(be, x, k, v, y, B * Tk, rest);
    xaa_attend_forward(be, x, out, zp, k, v, B, Tq, Tk, key_len, probs, rest);
}
