/* The FAME-ViL tasks as training steps: towers run as streams of saved layer activations in
 * contrastive, fusion or generative mode (MODEL.md §2), the heads and losses on top, then the
 * backward in reverse order. Not for: inference (towers.c) or the NTM (ntm_backward.c). */
#include "train_tasks.h"

#include <stdlib.h>
#include <string.h>

#include "clip.h" /* clip_text_pool_position */
#include "modes.h"
#include "train_heads.h"
#include "train_layers.h"

/* One tower's saved state in a step. Layer l reads layer_in(l) and writes acts[l].out. */
typedef struct stream {
    const tr_tower *t;
    const tr_adapter *tsa; /* [n_layers] or NULL */
    const tr_xaa *xaa;     /* [n_layers] or NULL */
    int B, T, causal;
    const float *z0; /* [B·T, D] after the embeddings */
    float *dz0;      /* its gradient */
    tr_layer_acts *acts;
} stream;

static const float *layer_in(const stream *s, int l) {
    return l ? s->acts[l - 1].out : s->z0;
}

static float *layer_din(const stream *s, int l) {
    return l ? s->acts[l - 1].dout : s->dz0;
}

static tl_status stream_init(stream *s, train_arena *ar, const tr_tower *t, int task, int B, int T,
                             int causal) {
    *s = (stream){t, task >= 0 ? t->tsa[task] : NULL, NULL, B, T, causal, NULL, NULL, NULL};
    s->acts = train_arena_alloc(ar, sizeof(tr_layer_acts) * (size_t)t->n_layers);
    return s->acts ? TL_OK : TL_ERR_NOMEM;
}

/* out += TSA(z') after the MLP step. */
static tl_status mlp_tsa_forward(tl_backend *be, train_arena *ar, stream *s, int l) {
    tr_layer_acts *a = &s->acts[l];
    tl_status st = tr_layer_mlp_forward(be, ar, s->t, l, a);
    if (!st && s->tsa)
        st = tr_adapter_forward(be, ar, &s->tsa[l], &a->tsa, a->out, a->zp, s->B * s->T);
    return st;
}

static void mlp_tsa_backward(tl_backend *be, train_arena *ar, stream *s, int l) {
    tr_layer_acts *a = &s->acts[l];
    tr_layer_mlp_backward(be, ar, s->t, l, a);
    if (s->tsa)
        tr_adapter_backward(be, ar, &s->tsa[l], &a->tsa, a->dzp, a->dout, a->zp, s->B * s->T);
}

/* acts[l].zp = z + MHSA(LN1(z)) from layer l's input. */
static tl_status attn_forward(tl_backend *be, train_arena *ar, stream *s, int l) {
    return tr_layer_attn_forward(be, ar, s->t, l, &s->acts[l], layer_in(s, l), s->B, s->T,
                                 s->causal);
}

static tl_status stream_contrastive_forward(tl_backend *be, train_arena *ar, stream *s) {
    tl_status st = TL_OK;
    for (int l = 0; l < s->t->n_layers && !st; l++) {
        st = attn_forward(be, ar, s, l);
        if (!st) st = mlp_tsa_forward(be, ar, s, l);
    }
    return st;
}

static void stream_contrastive_backward(tl_backend *be, train_arena *ar, stream *s) {
    for (int l = s->t->n_layers - 1; l >= 0; l--) {
        mlp_tsa_backward(be, ar, s, l);
        tr_layer_attn_backward(be, ar, s->t, l, &s->acts[l], layer_din(s, l));
    }
}

/* The streams of a fusion or generative step, for modes.c's step order. */
typedef struct mode_run {
    tl_backend *be;
    train_arena *ar;
    stream *s[2];         /* by mode_stream */
    const int *text_keys; /* fusion: the text keys vision queries see */
    int generative;       /* the XAA reads vision layer l's output instead of its z' */
} mode_run;

static tl_status run_attn(void *ctx, mode_stream i, int l) {
    mode_run *r = ctx;
    return attn_forward(r->be, r->ar, r->s[i], l);
}

static tl_status run_mlp_tsa(void *ctx, mode_stream i, int l) {
    mode_run *r = ctx;
    return mlp_tsa_forward(r->be, r->ar, r->s[i], l);
}

static tl_status run_xaa(void *ctx, mode_stream i, int l) {
    mode_run *r = ctx;
    stream *s = r->s[i];
    const stream *o = r->s[MODE_TEXT - i];
    tr_layer_acts *a = &s->acts[l];
    const float *y = r->generative ? o->acts[l].out : o->acts[l].zp;
    const int *keys = i == MODE_VISION ? r->text_keys : NULL;
    return tr_xaa_forward(r->be, r->ar, &s->xaa[l], &a->xaa, a->out, a->zp, y, s->B, s->T, o->T,
                          keys);
}

static const mode_steps training_steps = {run_attn, run_mlp_tsa, run_xaa};

/* Fusion (γ = 1) in modes.c's order; vision queries see text keys 0..EOS. */
static tl_status fusion_forward(tl_backend *be, train_arena *ar, stream *v, stream *t,
                                const int *text_keys) {
    mode_run r = {be, ar, {v, t}, text_keys, 0};
    tl_status st = TL_OK;
    for (int l = 0; l < v->t->n_layers && !st; l++) st = mode_fusion_layer(&training_steps, &r, l);
    return st;
}

static void fusion_backward(tl_backend *be, train_arena *ar, stream *v, stream *t) {
    for (int l = v->t->n_layers - 1; l >= 0; l--) {
        tr_layer_acts *av = &v->acts[l], *at = &t->acts[l];
        mlp_tsa_backward(be, ar, v, l);
        mlp_tsa_backward(be, ar, t, l);
        tr_xaa_backward(be, ar, &v->xaa[l], &av->xaa, av->dzp, at->dzp, av->dout, av->zp, at->zp);
        tr_xaa_backward(be, ar, &t->xaa[l], &at->xaa, at->dzp, av->dzp, at->dout, at->zp, av->zp);
        tr_layer_attn_backward(be, ar, v->t, l, av, layer_din(v, l));
        tr_layer_attn_backward(be, ar, t->t, l, at, layer_din(t, l));
    }
}

/* ---- text input ---- */

/* Packed text rows: ids [B, T] with T = the longest EOS + 1, the pooled row of each item
 * (b·T + EOS_b) and the key count of each item for vision queries (EOS_b + 1). */
typedef struct text_input {
    int32_t *ids;
    int32_t *pool_rows;
    int *keys;
    int T;
} text_input;

static tl_status text_pack(const train_model *m, train_arena *ar, const int32_t *ids, int stride,
                           int B, text_input *in, tl_error *err) {
    in->ids = train_arena_alloc(ar, (size_t)B * stride * sizeof(int32_t));
    in->pool_rows = train_arena_alloc(ar, (size_t)B * sizeof(int32_t));
    in->keys = train_arena_alloc(ar, (size_t)B * sizeof(int));
    if (ar->failed) return tl_fail(err, TL_ERR_NOMEM, "out of memory for token ids");
    in->T = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *row = ids + (size_t)b * stride;
        int eos = clip_text_pool_position(row, stride);
        for (int i = 0; i <= eos; i++)
            if (row[i] < 0 || row[i] >= m->text.vocab)
                return tl_fail(err, TL_ERR_INVALID, "text row %d: id %d outside 0..%d", b, row[i],
                               m->text.vocab - 1);
        if (eos >= m->text.positions)
            return tl_fail(err, TL_ERR_LIMIT, "text row %d: EOS past position %d", b,
                           m->text.positions - 1);
        in->keys[b] = eos + 1;
        if (eos + 1 > in->T) in->T = eos + 1;
    }
    for (int b = 0; b < B; b++) { /* positions after a row's EOS reach nothing: id 0 there */
        for (int i = 0; i < in->T; i++)
            in->ids[(size_t)b * in->T + i] = i < in->keys[b] ? ids[(size_t)b * stride + i] : 0;
        in->pool_rows[b] = b * in->T + in->keys[b] - 1;
    }
    return TL_OK;
}

/* ---- encoders: embeddings + towers + pooled heads, and their backwards ---- */

typedef struct vision_run {
    tr_vision_embed_acts embed;
    stream s;
    int32_t *cls_rows;
    tr_pool_acts pool;
} vision_run;

typedef struct text_run {
    text_input in;
    stream s;
    tr_pool_acts pool;
} text_run;

static tl_status vision_start(train_model *m, train_arena *ar, vision_run *r, int task,
                              const float *pixels, int B) {
    tr_vision *v = &m->vision;
    tl_status st = stream_init(&r->s, ar, &v->tower, task, B, v->tokens, 0);
    if (!st) st = tr_vision_embed_forward(m->be, ar, v, &r->embed, pixels, B);
    r->cls_rows = train_arena_alloc(ar, (size_t)B * sizeof(int32_t));
    if (st || !r->cls_rows) return TL_ERR_NOMEM;
    for (int b = 0; b < B; b++) r->cls_rows[b] = b * v->tokens;
    r->s.z0 = r->embed.z, r->s.dz0 = r->embed.dz;
    return TL_OK;
}

static tl_status vision_pool(train_model *m, train_arena *ar, vision_run *r) {
    tr_vision *v = &m->vision;
    const float *z = r->s.acts[v->tower.n_layers - 1].out;
    return tr_pool_forward(m->be, ar, &v->post_ln, &v->proj, v->tower.width, m->projection_dim,
                           v->tower.eps, &r->pool, z, r->cls_rows, r->s.B);
}

static void vision_pool_backward(train_model *m, train_arena *ar, vision_run *r) {
    tr_vision *v = &m->vision;
    tr_pool_backward(m->be, ar, &v->post_ln, &v->proj, v->tower.width, m->projection_dim,
                     v->tower.eps, &r->pool, r->s.acts[v->tower.n_layers - 1].dout);
}

static tl_status text_start(train_model *m, train_arena *ar, text_run *r, int task,
                            const int32_t *ids, int stride, int B, tl_error *err) {
    tr_text *t = &m->text;
    tl_status st = text_pack(m, ar, ids, stride, B, &r->in, err);
    if (st) return st;
    st = stream_init(&r->s, ar, &t->tower, task, B, r->in.T, 1);
    float *z = NULL, *dz = NULL;
    if (!st) st = tr_text_embed_forward(m->be, ar, t, &z, &dz, r->in.ids, B, r->in.T);
    r->s.z0 = z, r->s.dz0 = dz;
    return st ? tl_fail(err, TL_ERR_NOMEM, "out of memory for the text tower") : TL_OK;
}

static tl_status text_pool(train_model *m, train_arena *ar, text_run *r) {
    tr_text *t = &m->text;
    const float *z = r->s.acts[t->tower.n_layers - 1].out;
    return tr_pool_forward(m->be, ar, &t->final_ln, &t->proj, t->tower.width, m->projection_dim,
                           t->tower.eps, &r->pool, z, r->in.pool_rows, r->s.B);
}

static void text_pool_backward(train_model *m, train_arena *ar, text_run *r) {
    tr_text *t = &m->text;
    tr_pool_backward(m->be, ar, &t->final_ln, &t->proj, t->tower.width, m->projection_dim,
                     t->tower.eps, &r->pool, r->s.acts[t->tower.n_layers - 1].dout);
}

static tl_status nomem(train_arena *ar, tl_status st, tl_error *err) {
    if (ar->failed) return tl_fail(err, TL_ERR_NOMEM, "out of memory for activations");
    if (st == TL_ERR_NOMEM) return tl_fail(err, st, "out of memory for activations");
    return st;
}

/* Contrastive vision with TSA_task: embeds in r->pool.embeds. */
static tl_status vision_contrastive(train_model *m, train_arena *ar, vision_run *r, int task,
                                    const float *pixels, int B) {
    tl_status st = vision_start(m, ar, r, task, pixels, B);
    if (!st) st = stream_contrastive_forward(m->be, ar, &r->s);
    if (!st) st = vision_pool(m, ar, r);
    return st;
}

static void vision_contrastive_backward(train_model *m, train_arena *ar, vision_run *r) {
    vision_pool_backward(m, ar, r);
    stream_contrastive_backward(m->be, ar, &r->s);
    tr_vision_embed_backward(m->be, ar, &m->vision, &r->embed, r->s.B);
}

static void text_embed_backward(train_model *m, text_run *r) {
    tr_text_embed_backward(m->be, &m->text, r->s.dz0, r->in.ids, r->s.B, r->in.T);
}

/* Fusion with TSA_task: fused [B, P] = projected CLS + projected EOS (arena). */
static tl_status fusion_run(train_model *m, train_arena *ar, vision_run *vr, text_run *tr_,
                            int task, const float *pixels, const int32_t *ids, int stride, int B,
                            float **fused, tl_error *err) {
    tl_status st = text_start(m, ar, tr_, task, ids, stride, B, err);
    if (st) return st;
    st = vision_start(m, ar, vr, task, pixels, B);
    if (!st) {
        vr->s.xaa = m->vision.tower.xaa, tr_->s.xaa = m->text.tower.xaa;
        st = fusion_forward(m->be, ar, &vr->s, &tr_->s, tr_->in.keys);
    }
    if (!st) st = vision_pool(m, ar, vr);
    if (!st) st = text_pool(m, ar, tr_);
    size_t n = (size_t)B * m->projection_dim;
    *fused = st ? NULL : train_arena_floats(ar, n);
    if (!st && *fused) {
        memcpy(*fused, vr->pool.embeds, n * sizeof(float));
        m->be->axpy(m->be, *fused, tr_->pool.embeds, 1.0f, n);
    }
    return nomem(ar, st, err);
}

/* From dfused [B, P] (the gradient of both projected vectors) back through both towers. */
static void fusion_backward_all(train_model *m, train_arena *ar, vision_run *vr, text_run *tr_,
                                const float *dfused) {
    size_t n = (size_t)vr->s.B * m->projection_dim;
    m->be->axpy(m->be, vr->pool.dembeds, dfused, 1.0f, n);
    m->be->axpy(m->be, tr_->pool.dembeds, dfused, 1.0f, n);
    vision_pool_backward(m, ar, vr);
    text_pool_backward(m, ar, tr_);
    fusion_backward(m->be, ar, &vr->s, &tr_->s);
    tr_vision_embed_backward(m->be, ar, &m->vision, &vr->embed, vr->s.B);
    text_embed_backward(m, tr_);
}

/* ---- tasks ---- */

tl_status train_xmr_step(train_model *m, train_arena *ar, const float *pixels, const int32_t *ids,
                         int ids_stride, int B, const train_distill *kd, double *loss,
                         tl_error *err) {
    train_arena_reset(ar);
    vision_run vr = {0};
    text_run tr_ = {0};
    tr_norm_head_acts hv = {0}, ht = {0};
    int P = m->projection_dim;
    const float *sigma = m->head_scale[0];
    float *dsigma = m->dhead_scale[0];
    tl_status st = text_start(m, ar, &tr_, TL_TASK_XMR, ids, ids_stride, B, err);
    if (st) return st;
    st = stream_contrastive_forward(m->be, ar, &tr_.s);
    if (!st) st = text_pool(m, ar, &tr_);
    if (!st) st = vision_contrastive(m, ar, &vr, TL_TASK_XMR, pixels, B);
    if (!st) st = tr_norm_head_forward(m->be, ar, sigma, &hv, vr.pool.embeds, B, P);
    if (!st) st = tr_norm_head_forward(m->be, ar, sigma, &ht, tr_.pool.embeds, B, P);
    if (!st)
        st = tr_match_loss(m->be, ar, hv.feats, ht.feats, B, P, 1, hv.dfeats, ht.dfeats, kd, loss);
    if (st || (kd && kd->forward_only)) return nomem(ar, st, err);
    tr_norm_head_backward(m->be, ar, sigma, dsigma, &hv, vr.pool.dembeds, B, P);
    tr_norm_head_backward(m->be, ar, sigma, dsigma, &ht, tr_.pool.dembeds, B, P);
    vision_contrastive_backward(m, ar, &vr);
    text_pool_backward(m, ar, &tr_);
    stream_contrastive_backward(m->be, ar, &tr_.s);
    text_embed_backward(m, &tr_);
    return nomem(ar, TL_OK, err);
}

tl_status train_tgir_step(train_model *m, train_arena *ar, const float *ref_pixels,
                          const int32_t *ids, int ids_stride, const float *target_pixels, int B,
                          const train_distill *kd, double *loss, tl_error *err) {
    train_arena_reset(ar);
    vision_run vr = {0}, gr = {0};
    text_run tr_ = {0};
    tr_norm_head_acts hq = {0}, hg = {0};
    int P = m->projection_dim;
    const float *sigma = m->head_scale[1];
    float *dsigma = m->dhead_scale[1], *fused = NULL;
    float *dfused = train_arena_floats(ar, (size_t)B * P);
    if (!dfused) return nomem(ar, TL_ERR_NOMEM, err);
    tl_status st =
        fusion_run(m, ar, &vr, &tr_, TL_TASK_TGIR, ref_pixels, ids, ids_stride, B, &fused, err);
    if (st) return st;
    st = vision_contrastive(m, ar, &gr, TL_TASK_TGIR, target_pixels, B);
    if (!st) st = tr_norm_head_forward(m->be, ar, sigma, &hq, fused, B, P);
    if (!st) st = tr_norm_head_forward(m->be, ar, sigma, &hg, gr.pool.embeds, B, P);
    if (!st)
        st = tr_match_loss(m->be, ar, hq.feats, hg.feats, B, P, 0, hq.dfeats, hg.dfeats, kd, loss);
    if (st || (kd && kd->forward_only)) return nomem(ar, st, err);
    tr_norm_head_backward(m->be, ar, sigma, dsigma, &hq, dfused, B, P);
    tr_norm_head_backward(m->be, ar, sigma, dsigma, &hg, gr.pool.dembeds, B, P);
    vision_contrastive_backward(m, ar, &gr);
    fusion_backward_all(m, ar, &vr, &tr_, dfused);
    return nomem(ar, TL_OK, err);
}

tl_status train_scr_step(train_model *m, train_arena *ar, const float *pixels, const int32_t *ids,
                         int ids_stride, const int *labels, int B, const train_distill *kd,
                         double *loss, tl_error *err) {
    train_arena_reset(ar);
    for (int b = 0; b < B; b++)
        if (labels[b] < 0 || labels[b] >= m->scr_classes)
            return tl_fail(err, TL_ERR_INVALID, "scr label %d of item %d outside 0..%d", labels[b],
                           b, m->scr_classes - 1);
    vision_run vr = {0};
    text_run tr_ = {0};
    int P = m->projection_dim, K = m->scr_classes;
    float *fused = NULL, *dfused = train_arena_floats(ar, (size_t)B * P);
    float *logits = train_arena_floats(ar, (size_t)B * K);
    float *dlogits = train_arena_floats(ar, (size_t)B * K);
    if (ar->failed) return nomem(ar, TL_ERR_NOMEM, err);
    tl_status st =
        fusion_run(m, ar, &vr, &tr_, TL_TASK_SCR, pixels, ids, ids_stride, B, &fused, err);
    if (st) return st;
    m->be->linear(m->be, logits, 0, fused, 0, m->scr_head.w, m->scr_head.b, B, P, K, 0);
    st = tr_ce_loss(m->be, ar, logits, labels, B, K, dlogits, kd, loss, err);
    if (st || (kd && kd->forward_only)) return st;
    m->be->linear_backward(m->be, dfused, 0, m->scr_head.dw, m->scr_head.db, dlogits, 0, fused, 0,
                           m->scr_head.w, B, P, K);
    fusion_backward_all(m, ar, &vr, &tr_, dfused);
    return nomem(ar, TL_OK, err);
}

/* Generative text layers in modes.c's order: causal, TSA_fic, XAA of layer l reading vision
 * layer l's output. */
static tl_status generative_forward(tl_backend *be, train_arena *ar, stream *v, stream *t) {
    mode_run r = {be, ar, {v, t}, NULL, 1};
    tl_status st = TL_OK;
    for (int l = 0; l < t->t->n_layers && !st; l++)
        st = mode_generative_layer(&training_steps, &r, l);
    return st;
}

static void generative_backward(tl_backend *be, train_arena *ar, stream *v, stream *t) {
    for (int l = t->t->n_layers - 1; l >= 0; l--) {
        tr_layer_acts *at = &t->acts[l];
        mlp_tsa_backward(be, ar, t, l);
        tr_xaa_backward(be, ar, &t->xaa[l], &at->xaa, at->dzp, v->acts[l].dout, at->dout, at->zp,
                        v->acts[l].out);
        tr_layer_attn_backward(be, ar, t->t, l, at, layer_din(t, l));
    }
}

/* Labels of teacher forcing: position p of row b predicts ids[b, p+1] while p < EOS_b. */
static tl_status fic_labels(const train_model *m, const int32_t *ids, int B, int T, int *labels,
                            tl_error *err) {
    for (int b = 0; b < B; b++) {
        const int32_t *row = ids + (size_t)b * T;
        for (int i = 0; i < T; i++)
            if (row[i] < 0 || row[i] >= m->text.vocab)
                return tl_fail(err, TL_ERR_INVALID, "caption %d: id %d outside 0..%d", b, row[i],
                               m->text.vocab - 1);
        int eos = clip_text_pool_position(row, T);
        for (int p = 0; p < T; p++) labels[(size_t)b * T + p] = p < eos ? row[p + 1] : -1;
    }
    return TL_OK;
}

tl_status train_fic_step(train_model *m, train_arena *ar, const float *pixels, const int32_t *ids,
                         int B, int T, const train_distill *kd, double *loss, tl_error *err) {
    train_arena_reset(ar);
    if (T > m->text.positions)
        return tl_fail(err, TL_ERR_LIMIT, "captions of %d ids, past %d positions", T,
                       m->text.positions);
    tr_text *tx = &m->text;
    int D = tx->tower.width, V = tx->vocab, M = B * T;
    vision_run vr = {0};
    stream ts = {0};
    float *z = NULL, *dz = NULL;
    int *labels = train_arena_alloc(ar, (size_t)M * sizeof(int));
    float *hidden = train_arena_floats(ar, (size_t)M * D),
          *dhidden = train_arena_floats(ar, (size_t)M * D);
    float *logits = train_arena_floats(ar, (size_t)M * V),
          *dlogits = train_arena_floats(ar, (size_t)M * V);
    if (ar->failed) return nomem(ar, TL_ERR_NOMEM, err);
    tl_status st = fic_labels(m, ids, B, T, labels, err);
    if (st) return st;
    st = vision_start(m, ar, &vr, TL_TASK_FIC, pixels, B);
    if (!st) st = stream_contrastive_forward(m->be, ar, &vr.s);
    if (!st) st = stream_init(&ts, ar, &tx->tower, TL_TASK_FIC, B, T, 1);
    if (!st) st = tr_text_embed_forward(m->be, ar, tx, &z, &dz, ids, B, T);
    ts.z0 = z, ts.dz0 = dz, ts.xaa = tx->tower.xaa;
    if (!st) st = generative_forward(m->be, ar, &vr.s, &ts);
    if (st) return nomem(ar, st, err);
    tr_layer_acts *last = &ts.acts[tx->tower.n_layers - 1];
    m->be->layernorm(m->be, hidden, last->out, tx->final_ln.w, tx->final_ln.b, M, D, tx->tower.eps);
    m->be->linear(m->be, logits, 0, hidden, 0, m->fic_head.w, m->fic_head.b, M, D, V, 0);
    st = tr_ce_loss(m->be, ar, logits, labels, M, V, dlogits, kd, loss, err);
    if (st || (kd && kd->forward_only)) return st;
    m->be->linear_backward(m->be, dhidden, 0, m->fic_head.dw, m->fic_head.db, dlogits, 0, hidden, 0,
                           m->fic_head.w, M, D, V);
    m->be->layernorm_backward(m->be, last->dout, tx->final_ln.dw, tx->final_ln.db, dhidden,
                              last->out, tx->final_ln.w, M, D, tx->tower.eps);
    generative_backward(m->be, ar, &vr.s, &ts);
    tr_text_embed_backward(m->be, tx, ts.dz0, ids, B, T);
    stream_contrastive_backward(m->be, ar, &vr.s);
    tr_vision_embed_backward(m->be, ar, &m->vision, &vr.embed, B);
    return nomem(ar, TL_OK, err);
}
