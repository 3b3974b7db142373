/* Training forward/backward pairs of the CLIP parts (MODEL.md §1): the pre-LN layer's
 * attention and MLP steps, the vision and text embeddings and the pooled, projected heads,
 * written against the backend table. Not for: adapters (adapter_backward.c) or task wiring. */
#include "train_layers.h"

#include <string.h>

/* ---- attention step ---- */

tl_status tr_layer_attn_forward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                                tr_layer_acts *acts, const float *z, int B, int T, int causal) {
    const tr_layer *w = &t->layers[l];
    int D = t->width, M = B * T;
    size_t md = (size_t)M * D;
    acts->B = B, acts->T = T, acts->causal = causal, acts->z = z;
    acts->ln1 = train_arena_floats(ar, md);
    acts->qkv = train_arena_floats(ar, 3 * md);
    acts->probs = train_arena_floats(ar, (size_t)B * t->heads * T * T);
    acts->att = train_arena_floats(ar, md);
    acts->zp = train_arena_floats(ar, md);
    acts->out = train_arena_floats(ar, md);
    acts->dzp = train_arena_floats(ar, md);
    acts->dout = train_arena_floats(ar, md);
    if (ar->failed) return TL_ERR_NOMEM;
    be->layernorm(be, acts->ln1, z, w->ln1.w, w->ln1.b, M, D, t->eps);
    be->linear(be, acts->qkv, 3 * D, acts->ln1, 0, w->q.w, w->q.b, M, D, D, 0);
    be->linear(be, acts->qkv + D, 3 * D, acts->ln1, 0, w->k.w, w->k.b, M, D, D, 0);
    be->linear(be, acts->qkv + 2 * D, 3 * D, acts->ln1, 0, w->v.w, w->v.b, M, D, D, 0);
    be->attention(be, acts->att, acts->qkv, 3 * D, acts->qkv + D, acts->qkv + 2 * D, 3 * D, B, T, T,
                  t->heads, t->head_dim, causal, NULL, acts->probs);
    be->linear(be, acts->zp, 0, acts->att, 0, w->out.w, w->out.b, M, D, D, 0);
    be->axpy(be, acts->zp, z, 1.0f, md);
    return TL_OK;
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
    be->linear_backward(be, datt, 0, w->out.dw, w->out.db, acts->dzp, 0, acts->att, 0, w->out.w, M,
                        D, D);
    be->attention_backward(be, dqkv, dqkv + D, dqkv + 2 * D, datt, acts->qkv, 3 * D, acts->qkv + D,
                           acts->qkv + 2 * D, 3 * D, acts->probs, B, T, T, t->heads, t->head_dim);
    const tr_linear *proj[3] = {&w->q, &w->k, &w->v};
    for (int i = 0; i < 3; i++)
        be->linear_backward(be, dln1, 0, proj[i]->dw, proj[i]->db, dqkv + i * D, 3 * D, acts->ln1,
                            0, proj[i]->w, M, D, D);
    be->layernorm_backward(be, dz, w->ln1.dw, w->ln1.db, dln1, acts->z, w->ln1.w, M, D, t->eps);
}

/* ---- MLP step ---- */

tl_status tr_layer_mlp_forward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                               tr_layer_acts *acts) {
    const tr_layer *w = &t->layers[l];
    int D = t->width, I = t->mlp, M = acts->B * acts->T;
    acts->ln2 = train_arena_floats(ar, (size_t)M * D);
    acts->fc1 = train_arena_floats(ar, (size_t)M * I);
    acts->act = train_arena_floats(ar, (size_t)M * I);
    if (ar->failed) return TL_ERR_NOMEM;
    be->layernorm(be, acts->ln2, acts->zp, w->ln2.w, w->ln2.b, M, D, t->eps);
    be->linear(be, acts->fc1, 0, acts->ln2, 0, w->fc1.w, w->fc1.b, M, D, I, 0);
    memcpy(acts->act, acts->fc1, (size_t)M * I * sizeof(float));
    be->quick_gelu(be, acts->act, (size_t)M * I);
    be->linear(be, acts->out, 0, acts->act, 0, w->fc2.w, w->fc2.b, M, I, D, 0);
    be->axpy(be, acts->out, acts->zp, 1.0f, (size_t)M * D);
    return TL_OK;
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
    be->linear_backward(be, dact, 0, w->fc2.dw, w->fc2.db, acts->dout, 0, acts->act, 0, w->fc2.w, M,
                        I, D);
    be->quick_gelu_backward(be, dfc1, dact, acts->fc1, (size_t)M * I);
    be->linear_backward(be, dln2, 0, w->fc1.dw, w->fc1.db, dfc1, 0, acts->ln2, 0, w->fc1.w, M, D,
                        I);
    be->layernorm_backward(be, acts->dzp, w->ln2.dw, w->ln2.db, dln2, acts->zp, w->ln2.w, M, D,
                           t->eps);
}

/* ---- embeddings ---- */

tl_status tr_vision_embed_forward(tl_backend *be, train_arena *ar, const tr_vision *v,
                                  tr_vision_embed_acts *acts, const float *pixels, int B) {
    int T = v->tokens, D = v->tower.width, K = v->channels * v->patch * v->patch, M = B * T;
    acts->patches = train_arena_floats(ar, (size_t)M * K);
    acts->emb = train_arena_floats(ar, (size_t)M * D);
    acts->z = train_arena_floats(ar, (size_t)M * D);
    acts->dz = train_arena_floats(ar, (size_t)M * D);
    if (ar->failed) return TL_ERR_NOMEM;
    be->im2col_patches(be, acts->patches, pixels, B, v->channels, v->image_size, v->patch, 1);
    be->linear(be, acts->emb, 0, acts->patches, 0, v->patch_embed.w, NULL, M, K, D, 0);
    be->add_rows_periodic(be, acts->emb, v->pos_emb, M, T, D);
    for (int b = 0; b < B; b++) be->axpy(be, acts->emb + (size_t)b * T * D, v->class_emb, 1.0f, D);
    be->layernorm(be, acts->z, acts->emb, v->pre_ln.w, v->pre_ln.b, M, D, v->tower.eps);
    return TL_OK;
}

void tr_vision_embed_backward(tl_backend *be, train_arena *ar, const tr_vision *v,
                              const tr_vision_embed_acts *acts, int B) {
    int T = v->tokens, D = v->tower.width, K = v->channels * v->patch * v->patch, M = B * T;
    float *demb = train_arena_floats(ar, (size_t)M * D);
    if (ar->failed) return;
    be->layernorm_backward(be, demb, v->pre_ln.dw, v->pre_ln.db, acts->dz, acts->emb, v->pre_ln.w,
                           M, D, v->tower.eps);
    if (v->patch_embed.dw)
        be->linear_backward(be, NULL, 0, v->patch_embed.dw, NULL, demb, 0, acts->patches, 0,
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
    be->gather_rows(be, *z, t->tok_emb, ids, B * T, D);
    be->add_rows_periodic(be, *z, t->pos_emb, B * T, T, D);
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
    be->gather_rows(be, acts->gathered, z, rows, B, D);
    be->layernorm(be, acts->pooled, acts->gathered, ln->w, ln->b, B, D, eps);
    be->linear(be, acts->embeds, 0, acts->pooled, 0, proj->w, NULL, B, D, P, 0);
    return TL_OK;
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
