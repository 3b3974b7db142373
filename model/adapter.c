/* Bottleneck adapter and cross-attention adapter forward passes (MODEL.md §2), written once
 * in backend operations. Not for: layer wiring or modes (tasks.c). */
#include "adapter.h"

#include <string.h>

size_t adapter_scratch_floats(const adapter_params *a, int N) {
    return (size_t)N * (size_t)(a->dim + a->rank);
}

void adapter_forward(tl_backend *be, const adapter_params *a, float *out, const float *x, int N,
                     const adapter_record *rec, float *scratch) {
    int D = a->dim, r = a->rank;
    size_t nr = (size_t)N * r;
    float *xn = rec ? rec->ln : scratch;                       // (N, D): LN(x)
    float *h = rec ? rec->hid : scratch + (size_t)N * D;       // (N, r)
    float *pre = rec ? rec->pre : h, *up = rec ? rec->up : xn; // relu input; W_up h + b_up
    be->layernorm(be, xn, x, a->ln_w, a->ln_b, N, D, ADAPTER_LN_EPS);
    be->linear(be, pre, 0, xn, 0, a->down_w, a->down_b, N, D, r, 0);
    if (pre != h) memcpy(h, pre, nr * sizeof *h);
    be->relu(be, h, nr);
    be->linear(be, up, 0, h, 0, a->up_w, a->up_b, N, r, D, 0);
    be->axpy(be, out, up, *a->scale, (size_t)N * D);
}

size_t xaa_kv_scratch_floats(const xaa_params *x, int N) {
    return (size_t)N * x->dc;
}

void xaa_kv_forward(tl_backend *be, const xaa_params *x, float *k, float *v, int ldkv,
                    const float *y, int N, float *ln_kv, float *scratch) {
    float *c = ln_kv ? ln_kv : scratch; // (N, Dc)
    be->layernorm(be, c, y, x->ln_kv_w, x->ln_kv_b, N, x->dc, ADAPTER_LN_EPS);
    be->linear(be, k, ldkv, c, 0, x->k_w, x->k_b, N, x->dc, x->dq, 0);
    be->linear(be, v, ldkv, c, 0, x->v_w, x->v_b, N, x->dc, x->dq, 0);
}

size_t xaa_attend_scratch_floats(const xaa_params *x, int B, int Tq) {
    size_t rows = (size_t)B * Tq;
    return rows * x->dq + adapter_scratch_floats(&x->adapter, (int)rows);
}

void xaa_attend_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp,
                        const float *k, const float *v, int ldkv, int B, int Tq, int Tk,
                        const int *key_len, float *probs, const xaa_record *rec, float *scratch) {
    int rows = B * Tq, D = x->dq;
    float *ln = rec ? rec->ln_q : scratch;                // (B, Tq, Dq): LN_q(zp)
    float *q = rec ? rec->q : scratch + (size_t)rows * D; // (B, Tq, Dq); then adapter scratch
    float *att = rec ? rec->att : ln;                     // attention output
    be->layernorm(be, ln, zp, x->ln_q_w, x->ln_q_b, rows, D, ADAPTER_LN_EPS);
    tl_linear_prefer_bf16(be, q, 0, ln, 0, x->q_w, x->q_bf16, x->q_b, rows, D, D, 0);
    be->attention(be, att, q, D, k, v, ldkv, B, Tq, Tk, x->heads, D / x->heads, 0, key_len,
                  rec ? rec->probs : probs);
    adapter_forward(be, &x->adapter, out, att, rows, rec ? &rec->adapter : NULL, rec ? NULL : q);
}

size_t xaa_scratch_floats(const xaa_params *x, int B, int Tq, int Tk) {
    size_t kv_rows = (size_t)B * Tk, kv_scratch = xaa_kv_scratch_floats(x, B * Tk);
    size_t attend_scratch = xaa_attend_scratch_floats(x, B, Tq);
    return 2 * kv_rows * x->dq + (kv_scratch > attend_scratch ? kv_scratch : attend_scratch);
}

void xaa_forward(tl_backend *be, const xaa_params *x, float *out, const float *zp, const float *y,
                 int B, int Tq, int Tk, const int *key_len, float *probs, const xaa_record *rec,
                 float *scratch) {
    int D = x->dq;
    float *kv = rec ? rec->kv : scratch; // (B, Tk, 2·Dq): K | V
    float *rest = rec ? NULL : scratch + 2 * (size_t)B * Tk * D;
    xaa_kv_forward(be, x, kv, kv + D, 2 * D, y, B * Tk, rec ? rec->ln_kv : NULL, rest);
    xaa_attend_forward(be, x, out, zp, kv, kv + D, 2 * D, B, Tq, Tk, key_len, probs, rec, rest);
}
