/* Training forward/backward pairs of the FAME-ViL adapters (MODEL.md §2): the bottleneck
 * adapter used by TSA and XAA, and the cross-attention adapter with its key mask.
 * Not for: where adapters attach (train_tasks.c) or inference (adapter.c). */
#include "train_layers.h"

#include <string.h>

/* Σ a[i]·b[i] in double (host memory). */
static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

tl_status tr_adapter_forward(tl_backend *be, train_arena *ar, const tr_adapter *a,
                             tr_adapter_acts *acts, float *out, const float *x, int M) {
    int D = a->dim, r = a->rank;
    acts->ln = train_arena_floats(ar, (size_t)M * D);
    acts->pre = train_arena_floats(ar, (size_t)M * r);
    acts->hid = train_arena_floats(ar, (size_t)M * r);
    acts->up = train_arena_floats(ar, (size_t)M * D);
    if (ar->failed) return TL_ERR_NOMEM;
    be->layernorm(be, acts->ln, x, a->ln.w, a->ln.b, M, D, 1e-5f);
    be->linear(be, acts->pre, 0, acts->ln, 0, a->down.w, a->down.b, M, D, r, 0);
    memcpy(acts->hid, acts->pre, (size_t)M * r * sizeof(float));
    be->relu(be, acts->hid, (size_t)M * r);
    be->linear(be, acts->up, 0, acts->hid, 0, a->up.w, a->up.b, M, r, D, 0);
    be->axpy(be, out, acts->up, a->s[0], (size_t)M * D);
    return TL_OK;
}

void tr_adapter_backward(tl_backend *be, train_arena *ar, const tr_adapter *a,
                         const tr_adapter_acts *acts, float *dx, const float *dout, const float *x,
                         int M) {
    int D = a->dim, r = a->rank;
    size_t md = (size_t)M * D;
    float *dup = train_arena_floats(ar, md), *dhid = train_arena_floats(ar, (size_t)M * r);
    float *dpre = train_arena_floats(ar, (size_t)M * r), *dln = train_arena_floats(ar, md);
    if (ar->failed) return;
    if (a->ds) a->ds[0] += (float)dot(dout, acts->up, md);
    be->axpy(be, dup, dout, a->s[0], md);
    be->linear_backward(be, dhid, 0, a->up.dw, a->up.db, dup, 0, acts->hid, 0, a->up.w, M, r, D);
    be->relu_backward(be, dpre, dhid, acts->pre, (size_t)M * r);
    be->linear_backward(be, dln, 0, a->down.dw, a->down.db, dpre, 0, acts->ln, 0, a->down.w, M, D,
                        r);
    be->layernorm_backward(be, dx, a->ln.dw, a->ln.db, dln, x, a->ln.w, M, D, 1e-5f);
}

tl_status tr_xaa_forward(tl_backend *be, train_arena *ar, const tr_xaa *x, tr_xaa_acts *acts,
                         float *out, const float *zp, const float *y, int B, int Tq, int Tk,
                         const int *key_len) {
    int Dq = x->dq, Dc = x->dc, Mq = B * Tq, Mk = B * Tk;
    acts->B = B, acts->Tq = Tq, acts->Tk = Tk, acts->key_len = key_len;
    acts->ln_q = train_arena_floats(ar, (size_t)Mq * Dq);
    acts->q = train_arena_floats(ar, (size_t)Mq * Dq);
    acts->ln_kv = train_arena_floats(ar, (size_t)Mk * Dc);
    acts->kv = train_arena_floats(ar, (size_t)Mk * 2 * Dq);
    acts->probs = train_arena_floats(ar, (size_t)B * x->heads * Tq * Tk);
    acts->att = train_arena_floats(ar, (size_t)Mq * Dq);
    if (ar->failed) return TL_ERR_NOMEM;
    be->layernorm(be, acts->ln_q, zp, x->ln_q.w, x->ln_q.b, Mq, Dq, 1e-5f);
    be->linear(be, acts->q, 0, acts->ln_q, 0, x->q.w, x->q.b, Mq, Dq, Dq, 0);
    be->layernorm(be, acts->ln_kv, y, x->ln_kv.w, x->ln_kv.b, Mk, Dc, 1e-5f);
    be->linear(be, acts->kv, 2 * Dq, acts->ln_kv, 0, x->k.w, x->k.b, Mk, Dc, Dq, 0);
    be->linear(be, acts->kv + Dq, 2 * Dq, acts->ln_kv, 0, x->v.w, x->v.b, Mk, Dc, Dq, 0);
    be->attention(be, acts->att, acts->q, Dq, acts->kv, acts->kv + Dq, 2 * Dq, B, Tq, Tk, x->heads,
                  Dq / x->heads, 0, key_len, acts->probs);
    return tr_adapter_forward(be, ar, &x->adapter, &acts->adapter, out, acts->att, Mq);
}

void tr_xaa_backward(tl_backend *be, train_arena *ar, const tr_xaa *x, const tr_xaa_acts *acts,
                     float *dzp, float *dy, const float *dout, const float *zp, const float *y) {
    int Dq = x->dq, Dc = x->dc, Mq = acts->B * acts->Tq, Mk = acts->B * acts->Tk;
    float *datt = train_arena_floats(ar, (size_t)Mq * Dq),
          *dq = train_arena_floats(ar, (size_t)Mq * Dq);
    float *dkv = train_arena_floats(ar, (size_t)Mk * 2 * Dq);
    float *dln_q = train_arena_floats(ar, (size_t)Mq * Dq),
          *dln_kv = train_arena_floats(ar, (size_t)Mk * Dc);
    if (ar->failed) return;
    tr_adapter_backward(be, ar, &x->adapter, &acts->adapter, datt, dout, acts->att, Mq);
    be->attention_backward(be, dq, dkv, dkv + Dq, datt, acts->q, Dq, acts->kv, acts->kv + Dq,
                           2 * Dq, acts->probs, acts->B, acts->Tq, acts->Tk, x->heads,
                           Dq / x->heads);
    be->linear_backward(be, dln_q, 0, x->q.dw, x->q.db, dq, 0, acts->ln_q, 0, x->q.w, Mq, Dq, Dq);
    be->layernorm_backward(be, dzp, x->ln_q.dw, x->ln_q.db, dln_q, zp, x->ln_q.w, Mq, Dq, 1e-5f);
    be->linear_backward(be, dln_kv, 0, x->k.dw, x->k.db, dkv, 2 * Dq, acts->ln_kv, 0, x->k.w, Mk,
                        Dc, Dq);
    be->linear_backward(be, dln_kv, 0, x->v.dw, x->v.db, dkv + Dq, 2 * Dq, acts->ln_kv, 0, x->v.w,
                        Mk, Dc, Dq);
    be->layernorm_backward(be, dy, x->ln_kv.dw, x->ln_kv.db, dln_kv, y, x->ln_kv.w, Mk, Dc, 1e-5f);
}
