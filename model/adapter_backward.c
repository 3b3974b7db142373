/* Training forward/backward pairs of the FAME-ViL adapters (MODEL.md §2): the bottleneck
 * adapter used by TSA and XAA, and the cross-attention adapter with its key mask.
 * Not for: where adapters attach (train_tasks.c) or inference (adapter.c). */
#include "train_layers.h"

/* Σ a[i]·b[i] in double (host memory). */
static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* adapter.c's read-only view of a. */
static adapter_params adapter_view(const tr_adapter *a) {
    return (adapter_params){a->dim,    a->rank, a->ln.w, a->ln.b, a->down.w,
                            a->down.b, a->up.w, a->up.b, a->s};
}

/* Arena buffers of a's record for M rows (ar->failed tells when out of memory). */
static void adapter_record_alloc(train_arena *ar, const tr_adapter *a, adapter_record *acts,
                                 int M) {
    int D = a->dim, r = a->rank;
    acts->ln = train_arena_floats(ar, (size_t)M * D);
    acts->pre = train_arena_floats(ar, (size_t)M * r);
    acts->hid = train_arena_floats(ar, (size_t)M * r);
    acts->up = train_arena_floats(ar, (size_t)M * D);
}

tl_status tr_adapter_forward(tl_backend *be, train_arena *ar, const tr_adapter *a,
                             adapter_record *acts, float *out, const float *x, int M) {
    adapter_record_alloc(ar, a, acts, M);
    if (ar->failed) return TL_ERR_NOMEM;
    adapter_params view = adapter_view(a);
    adapter_forward(be, &view, out, x, M, acts, NULL);
    return TL_OK;
}

void tr_adapter_backward(tl_backend *be, train_arena *ar, const tr_adapter *a,
                         const adapter_record *acts, float *dx, const float *dout, const float *x,
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
    be->layernorm_backward(be, dx, a->ln.dw, a->ln.db, dln, x, a->ln.w, M, D, ADAPTER_LN_EPS);
}

tl_status tr_xaa_forward(tl_backend *be, train_arena *ar, const tr_xaa *x, tr_xaa_acts *acts,
                         float *out, const float *zp, const float *y, int B, int Tq, int Tk,
                         const int *key_len) {
    int Dq = x->dq, Dc = x->dc, Mq = B * Tq, Mk = B * Tk;
    xaa_record *rec = &acts->rec;
    acts->B = B, acts->Tq = Tq, acts->Tk = Tk, acts->key_len = key_len;
    rec->ln_q = train_arena_floats(ar, (size_t)Mq * Dq);
    rec->q = train_arena_floats(ar, (size_t)Mq * Dq);
    rec->ln_kv = train_arena_floats(ar, (size_t)Mk * Dc);
    rec->kv = train_arena_floats(ar, (size_t)Mk * 2 * Dq);
    rec->probs = train_arena_floats(ar, (size_t)B * x->heads * Tq * Tk);
    rec->att = train_arena_floats(ar, (size_t)Mq * Dq);
    adapter_record_alloc(ar, &x->adapter, &rec->adapter, Mq);
    if (ar->failed) return TL_ERR_NOMEM;
    xaa_params view = {
        Dq,     Dc,     x->heads, x->ln_q.w, x->ln_q.b, x->ln_kv.w, x->ln_kv.b,
        x->q.w, x->q.b, x->k.w,   x->k.b,    x->v.w,    x->v.b,     adapter_view(&x->adapter),
        NULL};
    xaa_forward(be, &view, out, zp, y, B, Tq, Tk, key_len, NULL, rec, NULL);
    return TL_OK;
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
    tr_adapter_backward(be, ar, &x->adapter, &acts->rec.adapter, datt, dout, acts->rec.att, Mq);
    be->attention_backward(be, dq, dkv, dkv + Dq, datt, acts->rec.q, Dq, acts->rec.kv,
                           acts->rec.kv + Dq, 2 * Dq, acts->rec.probs, acts->B, acts->Tq, acts->Tk,
                           x->heads, Dq / x->heads);
    be->linear_backward(be, dln_q, 0, x->q.dw, x->q.db, dq, 0, acts->rec.ln_q, 0, x->q.w, Mq, Dq,
                        Dq);
    be->layernorm_backward(be, dzp, x->ln_q.dw, x->ln_q.db, dln_q, zp, x->ln_q.w, Mq, Dq,
                           ADAPTER_LN_EPS);
    be->linear_backward(be, dln_kv, 0, x->k.dw, x->k.db, dkv, 2 * Dq, acts->rec.ln_kv, 0, x->k.w,
                        Mk, Dc, Dq);
    be->linear_backward(be, dln_kv, 0, x->v.dw, x->v.db, dkv + Dq, 2 * Dq, acts->rec.ln_kv, 0,
                        x->v.w, Mk, Dc, Dq);
    be->layernorm_backward(be, dy, x->ln_kv.dw, x->ln_kv.db, dln_kv, y, x->ln_kv.w, Mk, Dc,
                           ADAPTER_LN_EPS);
}
