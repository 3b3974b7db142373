/* Training forward/backward pairs of the CLIP parts (MODEL.md §1): the pre-LN layer's
 * attention and MLP steps, the vision and text embeddings and the pooled, projected heads,
 * written against the backend table. Not for: adapters (adapter_backward.c) or task wiring. */
#include "train_layers.h"

/* clip.c's read-only view of layer l of t, as a one-layer tower (layer index 0). */
static clip_tower layer_view(const tr_tower *t, int l, clip_layer_w *lw) {
    const tr_layer *w = &t->layers[l];
    *lw = (clip_layer_w){w->ln1.w, w->ln1.b, w->q.w,   w->q.b,   w->k.w,   w->k.b,
                         w->v.w,   w->v.b,   w->out.w, w->out.b, w->ln2.w, w->ln2.b,
                         w->fc1.w, w->fc1.b, w->fc2.w, w->fc2.b, NULL};
    return (clip_tower){t->width, t->heads, t->head_dim, t->mlp, 1, t->eps, lw};
}

/* ---- attention step ---- */

tl_status tr_layer_attn_forward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                                tr_layer_acts *acts, const float *z, int B, int T, int causal) {
    int D = t->width, M = B * T;
    size_t md = (size_t)M * D;
    acts->B = B, acts->T = T, acts->causal = causal, acts->z = z;
    acts->rec.ln1 = train_arena_floats(ar, md);
    acts->rec.qkv = train_arena_floats(ar, 3 * md);
    acts->rec.probs = train_arena_floats(ar, (size_t)B * t->heads * T * T);
    acts->rec.att = train_arena_floats(ar, md);
    acts->zp = train_arena_floats(ar, md);
    acts->out = train_arena_floats(ar, md);
    acts->dzp = train_arena_floats(ar, md);
    acts->dout = train_arena_floats(ar, md);
    if (ar->failed) return TL_ERR_NOMEM;
    clip_layer_w lw;
    clip_tower view = layer_view(t, l, &lw);
    return clip_layer_attn_forward(be, &view, 0, acts->zp, z, B, T, causal, NULL, &acts->rec, NULL,
                                   NULL);
}

void tr_layer_attn_backward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                            const tr_layer_acts *acts, float *dz) {
    const tr_layer *w = &t->layers[l];
    int D = t->width, B = acts->B, T = acts->T, M = B * T;
    size_t md = (size_t)M * D;
    float *datt = train_arena_floats(ar, md), *dqkv = train_arena_floats(ar, 3 * md);
    float *dln1 = train_arena_floats(ar, md);
    if (ar->failed) return;
    be->axpy(be, dz, acts->dzp, 1.0f, md); /* residual */
    be->linear_backward(be, datt, 0, w->out.dw, w->out.db, acts->dzp, 0, acts->rec.att, 0, w->out.w,
                        M, D, D);
    be->attention_backward(be, dqkv, dqkv + D, dqkv + 2 * D, datt, acts->rec.qkv, 3 * D,
                           acts->rec.qkv + D, acts->rec.qkv + 2 * D, 3 * D, acts->rec.probs, B, T,
                           T, t->heads, t->head_dim);
    const tr_linear *proj[3] = {&w->q, &w->k, &w->v};
    for (int i = 0; i < 3; i++)
        be->linear_backward(be, dln1, 0, proj[i]->dw, proj[i]->db, dqkv + i * D, 3 * D,
                            acts->rec.ln1, 0, proj[i]->w, M, D, D);
    be->layernorm_backward(be, dz, w->ln1.dw, w->ln1.db, dln1, acts->z, w->ln1.w, M, D, t->eps);
}

/* ---- MLP step ---- */

tl_status tr_layer_mlp_forward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                               tr_layer_acts *acts) {
    int D = t->width, I = t->mlp, M = acts->B * acts->T;
    acts->rec.ln2 = train_arena_floats(ar, (size_t)M * D);
    acts->rec.fc1 = train_arena_floats(ar, (size_t)M * I);
    acts->rec.act = train_arena_floats(ar, (size_t)M * I);
    if (ar->failed) return TL_ERR_NOMEM;
    clip_layer_w lw;
    clip_tower view = layer_view(t, l, &lw);
    return clip_layer_mlp_forward(be, &view, 0, acts->out, acts->zp, acts->B, acts->T, &acts->rec,
                                  NULL, NULL);
}

void tr_layer_mlp_backward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                           tr_layer_acts *acts) {
    const tr_layer *w = &t->layers[l];
    int D = t->width, I = t->mlp, M = acts->B * acts->T;
    float *dact = train_arena_floats(ar, (size_t)M * I),
          *dfc1 = train_arena_floats(ar, (size_t)M * I);
    float *dln2 = train_arena_floats(ar, (size_t)M * D);
    if (ar->failed) return;
    be->axpy(be, acts->dzp, acts->dout, 1.0f, (size_t)M * D); /* residual */
    be->linear_backward(be, dact, 0, w->fc2.dw, w->fc2.db, acts->dout, 0, acts->rec.act, 0,
                        w->fc2.w, M, I, D);
    be->quick_gelu_backward(be, dfc1, dact, acts->rec.fc1, (size_t)M * I);
    be->linear_backward(be, dln2, 0, w->fc1.dw, w->fc1.db, dfc1, 0, acts->rec.ln2, 0, w->fc1.w, M,
                        D, I);
    be->layernorm_backward(be, acts->dzp, w->ln2.dw, w->ln2.db, dln2, acts->zp, w->ln2.w, M, D,
                           t->eps);
}

/* ---- embeddings ---- */

tl_status tr_vision_embed_forward(tl_backend *be, train_arena *ar, const tr_vision *v,
                                  tr_vision_embed_acts *acts, const float *pixels, int B) {
    int T = v->tokens, D = v->tower.width, K = v->channels * v->patch * v->patch, M = B * T;
    acts->rec.patches = train_arena_floats(ar, (size_t)M * K);
    acts->rec.emb = train_arena_floats(ar, (size_t)M * D);
    acts->z = train_arena_floats(ar, (size_t)M * D);
    acts->dz = train_arena_floats(ar, (size_t)M * D);
    if (ar->failed) return TL_ERR_NOMEM;
    clip_vision_w view = {.tower = {.width = D, .eps = v->tower.eps},
                          .channels = v->channels,
                          .image_size = v->image_size,
                          .patch = v->patch,
                          .tokens = T,
                          .patch_w = v->patch_embed.w,
                          .class_emb = v->class_emb,
                          .pos_emb = v->pos_emb,
                          .pre_ln_w = v->pre_ln.w,
                          .pre_ln_b = v->pre_ln.b};
    return clip_vision_embed(be, &view, acts->z, pixels, B, &acts->rec, NULL, NULL);
}

void tr_vision_embed_backward(tl_backend *be, train_arena *ar, const tr_vision *v,
                              const tr_vision_embed_acts *acts, int B) {
    int T = v->tokens, D = v->tower.width, K = v->channels * v->patch * v->patch, M = B * T;
    float *demb = train_arena_floats(ar, (size_t)M * D);
    if (ar->failed) return;
    be->layernorm_backward(be, demb, v->pre_ln.dw, v->pre_ln.db, acts->dz, acts->rec.emb,
                           v->pre_ln.w, M, D, v->tower.eps);
    if (v->patch_embed.dw)
        be->linear_backward(be, NULL, 0, v->patch_embed.dw, NULL, demb, 0, acts->rec.patches, 0,
                            v->patch_embed.w, M, K, D);
    if (v->dpos_emb) be->sum_rows_periodic(be, v->dpos_emb, demb, M, T, D);
    for (int b = 0; b < B && v->dclass_emb; b++)
        be->axpy(be, v->dclass_emb, demb + (size_t)b * T * D, 1.0f, D);
}

tl_status tr_text_embed_forward(tl_backend *be, train_arena *ar, const tr_text *t, float **z,
                                float **dz, const int32_t *ids, int B, int T) {
    int D = t->tower.width;
    *z = train_arena_floats(ar, (size_t)B * T * D);
    *dz = train_arena_floats(ar, (size_t)B * T * D);
    if (ar->failed) return TL_ERR_NOMEM;
    clip_text_w view = {.tower = {.width = D}, .tok_emb = t->tok_emb, .pos_emb = t->pos_emb};
    clip_text_embed(be, &view, *z, ids, B, T);
    return TL_OK;
}

void tr_text_embed_backward(tl_backend *be, const tr_text *t, const float *dz, const int32_t *ids,
                            int B, int T) {
    int D = t->tower.width;
    if (t->dtok_emb) be->scatter_add_rows(be, t->dtok_emb, dz, ids, B * T, D);
    if (t->dpos_emb) be->sum_rows_periodic(be, t->dpos_emb, dz, B * T, T, D);
}

/* ---- pooled, projected heads ---- */

tl_status tr_pool_forward(tl_backend *be, train_arena *ar, const tr_norm *ln, const tr_linear *proj,
                          int D, int P, float eps, tr_pool_acts *acts, const float *z,
                          const int32_t *rows, int B) {
    acts->B = B, acts->rows = rows;
    acts->gathered = train_arena_floats(ar, (size_t)B * D);
    acts->pooled = train_arena_floats(ar, (size_t)B * D);
    acts->embeds = train_arena_floats(ar, (size_t)B * P);
    acts->dembeds = train_arena_floats(ar, (size_t)B * P);
    if (ar->failed) return TL_ERR_NOMEM;
    return clip_pool_and_project(be, z, rows, B, D, eps, ln->w, ln->b, proj->w, P, acts->gathered,
                                 acts->pooled, acts->embeds, NULL, NULL);
}

void tr_pool_backward(tl_backend *be, train_arena *ar, const tr_norm *ln, const tr_linear *proj,
                      int D, int P, float eps, const tr_pool_acts *acts, float *dz) {
    int B = acts->B;
    float *dpooled = train_arena_floats(ar, (size_t)B * D);
    float *dgathered = train_arena_floats(ar, (size_t)B * D);
    if (ar->failed) return;
    be->linear_backward(be, dpooled, 0, proj->dw, NULL, acts->dembeds, 0, acts->pooled, 0, proj->w,
                        B, D, P);
    be->layernorm_backward(be, dgathered, ln->dw, ln->db, dpooled, acts->gathered, ln->w, B, D,
                           eps);
    be->scatter_add_rows(be, dz, dgathered, acts->rows, B, D);
}
