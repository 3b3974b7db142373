/* CLIP towers on the backend table, in llm.c style: each function's comment gives its shapes;
 * B = batch, T = tokens, D = width, I = MLP width, P = projection width.
 * Weights stay in the safetensors mapping (zero-copy); activations live in a clip_scratch.
 * Not for: input validation beyond token ids (model.c) or adapters. */
#include "clip.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- weight binding ---- */

/* Fetches tensor `name` as float32 of shape dims[0..ndim). */
static tl_status bind_tensor(st_file *f, const char *name, const float **out, int ndim,
                             const int64_t *dims, tl_error *err) {
    return st_get_f32(f, name, ndim, dims, out, err);
}

#define BIND(f, name, out, err, ...)                                                               \
    bind_tensor(f, name, out, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),           \
                (const int64_t[]){__VA_ARGS__}, err)

typedef enum layer_shape { SHAPE_D, SHAPE_I, SHAPE_DD, SHAPE_ID, SHAPE_DI } layer_shape;

typedef struct layer_tensor {
    const char *suffix;
    size_t offset; /* of the pointer inside clip_layer_w */
    layer_shape shape;
} layer_tensor;

#define LW(field) offsetof(clip_layer_w, field)
static const layer_tensor layer_tensors[] = {
    {"layer_norm1.weight", LW(ln1_w), SHAPE_D},
    {"layer_norm1.bias", LW(ln1_b), SHAPE_D},
    {"self_attn.q_proj.weight", LW(q_w), SHAPE_DD},
    {"self_attn.q_proj.bias", LW(q_b), SHAPE_D},
    {"self_attn.k_proj.weight", LW(k_w), SHAPE_DD},
    {"self_attn.k_proj.bias", LW(k_b), SHAPE_D},
    {"self_attn.v_proj.weight", LW(v_w), SHAPE_DD},
    {"self_attn.v_proj.bias", LW(v_b), SHAPE_D},
    {"self_attn.out_proj.weight", LW(out_w), SHAPE_DD},
    {"self_attn.out_proj.bias", LW(out_b), SHAPE_D},
    {"layer_norm2.weight", LW(ln2_w), SHAPE_D},
    {"layer_norm2.bias", LW(ln2_b), SHAPE_D},
    {"mlp.fc1.weight", LW(fc1_w), SHAPE_ID},
    {"mlp.fc1.bias", LW(fc1_b), SHAPE_I},
    {"mlp.fc2.weight", LW(fc2_w), SHAPE_DI},
    {"mlp.fc2.bias", LW(fc2_b), SHAPE_D},
};

static tl_status bind_layer(st_file *f, const char *tower_name, int l, const clip_tower *t,
                            clip_layer_w *lw, tl_error *err) {
    int64_t D = t->width, I = t->mlp;
    for (size_t i = 0; i < sizeof layer_tensors / sizeof *layer_tensors; i++) {
        const layer_tensor *lt = &layer_tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%s.encoder.layers.%d.%s", tower_name, l, lt->suffix);
        const float **dst = (const float **)((char *)lw + lt->offset);
        int64_t dims[2][2] = {{D, D}, {I, D}};
        tl_status st;
        switch (lt->shape) {
            case SHAPE_D:
                st = BIND(f, name, dst, err, D);
                break;
            case SHAPE_I:
                st = BIND(f, name, dst, err, I);
                break;
            case SHAPE_DI:
                st = BIND(f, name, dst, err, D, I);
                break;
            default:
                st = bind_tensor(f, name, dst, 2, dims[lt->shape == SHAPE_ID], err);
        }
        if (st) return st;
    }
    return TL_OK;
}

static tl_status bind_tower(st_file *f, const char *tower_name, const clip_tower_config *c,
                            clip_tower *t, tl_error *err) {
    *t = (clip_tower){c->hidden_size,
                      c->num_attention_heads,
                      c->hidden_size / c->num_attention_heads,
                      c->intermediate_size,
                      c->num_hidden_layers,
                      c->layer_norm_eps,
                      NULL};
    t->layers = calloc((size_t)t->n_layers, sizeof *t->layers);
    if (!t->layers) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", tower_name);
    for (int l = 0; l < t->n_layers; l++) {
        tl_status st = bind_layer(f, tower_name, l, t, &t->layers[l], err);
        if (st) return st;
    }
    return TL_OK;
}

static tl_status bind_vision(st_file *f, const clip_config *cfg, clip_vision_w *v, tl_error *err) {
    const clip_vision_config *c = &cfg->vision;
    tl_status st = bind_tower(f, "vision_model", &c->tower, &v->tower, err);
    if (st) return st;
    int64_t D = c->tower.hidden_size, p = c->patch_size;
    v->channels = c->num_channels;
    v->image_size = c->image_size;
    v->patch = c->patch_size;
    v->grid = c->image_size / c->patch_size;
    v->tokens = v->grid * v->grid + 1;
    st = BIND(f, "vision_model.embeddings.patch_embedding.weight", &v->patch_w, err, D,
              c->num_channels, p, p);
    if (!st) st = BIND(f, "vision_model.embeddings.class_embedding", &v->class_emb, err, D);
    if (!st)
        st = BIND(f, "vision_model.embeddings.position_embedding.weight", &v->pos_emb, err,
                  v->tokens, D);
    if (!st) st = BIND(f, "vision_model.pre_layrnorm.weight", &v->pre_ln_w, err, D);
    if (!st) st = BIND(f, "vision_model.pre_layrnorm.bias", &v->pre_ln_b, err, D);
    if (!st) st = BIND(f, "vision_model.post_layernorm.weight", &v->post_ln_w, err, D);
    if (!st) st = BIND(f, "vision_model.post_layernorm.bias", &v->post_ln_b, err, D);
    if (!st) st = BIND(f, "visual_projection.weight", &v->proj, err, cfg->projection_dim, D);
    v->projection_dim = cfg->projection_dim;
    return st;
}

static tl_status bind_text(st_file *f, const clip_config *cfg, clip_text_w *t, tl_error *err) {
    const clip_text_config *c = &cfg->text;
    tl_status st = bind_tower(f, "text_model", &c->tower, &t->tower, err);
    if (st) return st;
    int64_t D = c->tower.hidden_size;
    t->vocab = c->vocab_size;
    t->positions = c->max_position_embeddings;
    st = BIND(f, "text_model.embeddings.token_embedding.weight", &t->tok_emb, err, t->vocab, D);
    if (!st)
        st = BIND(f, "text_model.embeddings.position_embedding.weight", &t->pos_emb, err,
                  t->positions, D);
    if (!st) st = BIND(f, "text_model.final_layer_norm.weight", &t->final_ln_w, err, D);
    if (!st) st = BIND(f, "text_model.final_layer_norm.bias", &t->final_ln_b, err, D);
    if (!st) st = BIND(f, "text_projection.weight", &t->proj, err, cfg->projection_dim, D);
    t->projection_dim = cfg->projection_dim;
    return st;
}

tl_status clip_bind(clip_weights *w, st_file *f, const clip_config *cfg, tl_error *err) {
    memset(w, 0, sizeof *w);
    w->projection_dim = cfg->projection_dim;
    tl_status st = bind_vision(f, cfg, &w->vision, err);
    if (!st) st = bind_text(f, cfg, &w->text, err);
    const float *scale = NULL;
    if (!st) st = bind_tensor(f, "logit_scale", &scale, 0, NULL, err);
    if (st) {
        clip_weights_free(w);
        return st;
    }
    w->logit_scale = *scale;
    return TL_OK;
}

void clip_weights_free(clip_weights *w) {
    free(w->vision.tower.layers);
    free(w->text.tower.layers);
    memset(w, 0, sizeof *w);
}

/* ---- activation memory ---- */

void clip_scratch_init(clip_scratch *s, tl_backend *be) {
    *s = (clip_scratch){be, {NULL, 0}, {NULL, 0}};
}

void clip_scratch_free(clip_scratch *s) {
    if (!s->be) return;
    s->be->free(s->be, s->layer.p);
    s->be->free(s->be, s->tower.p);
    clip_scratch_init(s, s->be);
}

float *clip_arena_reserve(clip_scratch *s, clip_arena *a, size_t floats, tl_error *err) {
    if (a->cap >= floats) return a->p;
    s->be->free(s->be, a->p);
    a->p = s->be->alloc(s->be, floats * sizeof(float));
    a->cap = a->p ? floats : 0;
    if (!a->p)
        tl_fail(err, TL_ERR_NOMEM, "out of memory for %zu MiB of activations",
                floats * sizeof(float) >> 20);
    return a->p;
}

/* ---- one pre-LN layer ---- */

/* y[M,N] = x[M,N] + in[M,K]·wᵀ + b (w_bf16: w's bfloat16 copy or NULL), accumulating in place
 * when y == x. */
static void residual_linear(tl_backend *be, float *y, const float *x, const float *in, int M, int K,
                            int N, const float *w, const tl_bf16 *w_bf16, const float *b) {
    tl_linear_prefer_bf16(be, y, 0, in, 0, w, w_bf16, b, M, K, N, y == x);
    if (y != x) be->axpy(be, y, x, 1.0f, (size_t)M * N);
}

tl_status clip_layer_attn_forward(tl_backend *be, const clip_tower *t, int l, float *zp,
                                  const float *z, int B, int T, int causal, const int *key_len,
                                  const clip_layer_record *rec, clip_scratch *s, tl_error *err) {
    const clip_layer_w *w = &t->layers[l];
    int M = B * T, D = t->width;
    size_t md = (size_t)M * D;
    float *buf = rec ? NULL : clip_arena_reserve(s, &s->layer, 4 * md, err);
    if (!rec && !buf) return TL_ERR_NOMEM;
    float *ln = rec ? rec->ln1 : buf, *qkv = rec ? rec->qkv : buf + md; /* [M,D], [M,3D] */
    float *att = rec ? rec->att : ln; /* [M,D], heads concatenated */
    be->layernorm(be, ln, z, w->ln1_w, w->ln1_b, M, D, t->eps);
    clip_layer_bf16 c = clip_layer_bf16_of(w);
    tl_linear_prefer_bf16(be, qkv, 3 * D, ln, 0, w->q_w, c.q, w->q_b, M, D, D, 0);
    tl_linear_prefer_bf16(be, qkv + D, 3 * D, ln, 0, w->k_w, c.k, w->k_b, M, D, D, 0);
    tl_linear_prefer_bf16(be, qkv + 2 * D, 3 * D, ln, 0, w->v_w, c.v, w->v_b, M, D, D, 0);
    be->attention(be, att, qkv, 3 * D, qkv + D, qkv + 2 * D, 3 * D, B, T, T, t->heads, t->head_dim,
                  causal, key_len, rec ? rec->probs : NULL);
    residual_linear(be, zp, z, att, M, D, D, w->out_w, c.out, w->out_b);
    return TL_OK;
}

tl_status clip_layer_mlp_forward(tl_backend *be, const clip_tower *t, int l, float *out,
                                 const float *zp, int B, int T, const clip_layer_record *rec,
                                 clip_scratch *s, tl_error *err) {
    const clip_layer_w *w = &t->layers[l];
    int M = B * T, D = t->width, I = t->mlp;
    size_t mi = (size_t)M * I;
    float *buf = rec ? NULL : clip_arena_reserve(s, &s->layer, (size_t)M * D + mi, err);
    if (!rec && !buf) return TL_ERR_NOMEM;
    float *ln = rec ? rec->ln2 : buf, *h = rec ? rec->act : buf + (size_t)M * D;
    float *pre = rec ? rec->fc1 : h; /* [M,I] quick_gelu input, kept apart when recorded */
    be->layernorm(be, ln, zp, w->ln2_w, w->ln2_b, M, D, t->eps); /* ln [M,D] */
    clip_layer_bf16 c = clip_layer_bf16_of(w);
    tl_linear_prefer_bf16(be, pre, 0, ln, 0, w->fc1_w, c.fc1, w->fc1_b, M, D, I, 0);
    if (pre != h) memcpy(h, pre, mi * sizeof *h);
    be->quick_gelu(be, h, mi);
    residual_linear(be, out, zp, h, M, I, D, w->fc2_w, c.fc2, w->fc2_b);
    return TL_OK;
}

/* z [B,T,D] through every layer in place, calling hook after each. */
static tl_status tower_forward(tl_backend *be, const clip_tower *t, float *z, int B, int T,
                               int causal, clip_scratch *s, clip_layer_hook hook, void *hook_ctx,
                               tl_error *err) {
    if (hook) hook(hook_ctx, 0, z, B, T, t->width);
    for (int l = 0; l < t->n_layers; l++) {
        tl_status st = clip_layer_attn_forward(be, t, l, z, z, B, T, causal, NULL, NULL, s, err);
        if (!st) st = clip_layer_mlp_forward(be, t, l, z, z, B, T, NULL, s, err);
        if (st) return st;
        if (hook) hook(hook_ctx, l + 1, z, B, T, t->width);
    }
    return TL_OK;
}

tl_status clip_pool_and_project(tl_backend *be, const float *z, const int32_t *rows, int B, int D,
                                float eps, const float *ln_w, const float *ln_b, const float *proj,
                                int P, float *gathered, float *pooled, float *embeds,
                                clip_scratch *s, tl_error *err) {
    float *tmp = gathered ? gathered : clip_arena_reserve(s, &s->layer, (size_t)B * D, err);
    if (!tmp) return TL_ERR_NOMEM;
    float *out = pooled ? pooled : tmp;
    be->gather_rows(be, tmp, z, rows, B, D);
    be->layernorm(be, out, tmp, ln_w, ln_b, B, D, eps);
    if (embeds) be->linear(be, embeds, 0, out, 0, proj, NULL, B, D, P, 0);
    return TL_OK;
}

/* ---- vision ---- */

tl_status clip_vision_embed(tl_backend *be, const clip_vision_w *w, float *z, const float *pixels,
                            int B, const clip_embed_record *rec, clip_scratch *s, tl_error *err) {
    int T = w->tokens, D = w->tower.width, K = w->channels * w->patch * w->patch;
    /* patches [B,T,K]; emb [B,T,D] before the norm (z itself unless recorded) */
    float *patches = rec ? rec->patches : clip_arena_reserve(s, &s->layer, (size_t)B * T * K, err);
    if (!patches) return TL_ERR_NOMEM;
    float *emb = rec ? rec->emb : z;
    be->im2col_patches(be, patches, pixels, B, w->channels, w->image_size, w->patch, 1);
    be->linear(be, emb, 0, patches, 0, w->patch_w, NULL, B * T, K, D, 0); /* CLS rows stay 0 */
    be->add_rows_periodic(be, emb, w->pos_emb, B * T, T, D);
    for (int b = 0; b < B; b++) be->axpy(be, emb + (size_t)b * T * D, w->class_emb, 1.0f, D);
    be->layernorm(be, z, emb, w->pre_ln_w, w->pre_ln_b, B * T, D, w->tower.eps);
    return TL_OK;
}

tl_status clip_vision_head(tl_backend *be, const clip_vision_w *w, const float *z, int B,
                           float *pooled, float *embeds, clip_scratch *s, tl_error *err) {
    int32_t *rows = malloc((size_t)B * sizeof *rows);
    if (!rows) return tl_fail(err, TL_ERR_NOMEM, "vision head: out of memory");
    for (int b = 0; b < B; b++) rows[b] = b * w->tokens; /* the CLS token of each image */
    tl_status st = clip_pool_and_project(be, z, rows, B, w->tower.width, w->tower.eps, w->post_ln_w,
                                         w->post_ln_b, w->proj, w->projection_dim, NULL, pooled,
                                         embeds, s, err);
    free(rows);
    return st;
}

tl_status clip_vision_forward(tl_backend *be, const clip_vision_w *w, const float *pixels, int B,
                              float *pooled, float *embeds, clip_scratch *s, clip_layer_hook hook,
                              void *hook_ctx, tl_error *err) {
    int T = w->tokens, D = w->tower.width;
    float *z = clip_arena_reserve(s, &s->tower, (size_t)B * T * D, err); /* [B,T,D] */
    if (!z) return TL_ERR_NOMEM;
    tl_status st = clip_vision_embed(be, w, z, pixels, B, NULL, s, err);
    if (!st) st = tower_forward(be, &w->tower, z, B, T, 0, s, hook, hook_ctx, err);
    if (!st) st = clip_vision_head(be, w, z, B, pooled, embeds, s, err);
    return st;
}

/* ---- text ---- */

int clip_text_pool_position(const int32_t *ids, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (ids[i] > ids[best]) best = i;
    return best;
}

void clip_text_embed(tl_backend *be, const clip_text_w *w, float *z, const int32_t *ids, int B,
                     int T) {
    int D = w->tower.width;
    be->gather_rows(be, z, w->tok_emb, ids, B * T, D); /* [B,T,D] */
    be->add_rows_periodic(be, z, w->pos_emb, B * T, T, D);
}

tl_status clip_text_head(tl_backend *be, const clip_text_w *w, const float *z, int B, int T,
                         const int *pool_pos, float *pooled, float *embeds, clip_scratch *s,
                         tl_error *err) {
    int32_t *rows = malloc((size_t)B * sizeof *rows);
    if (!rows) return tl_fail(err, TL_ERR_NOMEM, "text head: out of memory");
    for (int b = 0; b < B; b++) rows[b] = b * T + pool_pos[b];
    tl_status st = clip_pool_and_project(be, z, rows, B, w->tower.width, w->tower.eps,
                                         w->final_ln_w, w->final_ln_b, w->proj, w->projection_dim,
                                         NULL, pooled, embeds, s, err);
    free(rows);
    return st;
}

/* Validates ids [B, stride] and packs positions 0..T-1 (T = max pool position + 1) into
 * packed [B,T]; pool_pos[b] gets each row's pooling position. */
tl_status clip_text_pack_ids(const clip_text_w *w, const int32_t *ids, int stride, int B,
                             int32_t *packed, int *pool_pos, int *T_out, tl_error *err) {
    int T = 0;
    for (int b = 0; b < B; b++) {
        const int32_t *row = ids + (size_t)b * stride;
        for (int i = 0; i < stride; i++)
            if (row[i] < 0 || row[i] >= w->vocab)
                return tl_fail(err, TL_ERR_INVALID,
                               "text row %d: token id %d at position %d "
                               "outside the vocabulary 0..%d",
                               b, row[i], i, w->vocab - 1);
        pool_pos[b] = clip_text_pool_position(row, stride);
        if (pool_pos[b] >= w->positions)
            return tl_fail(err, TL_ERR_LIMIT,
                           "text row %d: end-of-text at position %d, past "
                           "the context length %d",
                           b, pool_pos[b], w->positions);
        if (pool_pos[b] + 1 > T) T = pool_pos[b] + 1;
    }
    for (int b = 0; b < B; b++)
        memcpy(packed + (size_t)b * T, ids + (size_t)b * stride, (size_t)T * sizeof *packed);
    *T_out = T;
    return TL_OK;
}

tl_status clip_text_forward(tl_backend *be, const clip_text_w *w, const int32_t *ids,
                            int ids_stride, int B, float *pooled, float *embeds, clip_scratch *s,
                            clip_layer_hook hook, void *hook_ctx, tl_error *err) {
    int D = w->tower.width, T = 0;
    int32_t *packed = malloc((size_t)B * ids_stride * sizeof *packed);
    int *pool_pos = calloc((size_t)B, sizeof *pool_pos);
    if (!packed || !pool_pos) {
        free(packed);
        free(pool_pos);
        return tl_fail(err, TL_ERR_NOMEM, "text: out of memory");
    }
    tl_status st = clip_text_pack_ids(w, ids, ids_stride, B, packed, pool_pos, &T, err);
    float *z = st ? NULL : clip_arena_reserve(s, &s->tower, (size_t)B * T * D, err); /* [B,T,D] */
    if (!st && !z) st = TL_ERR_NOMEM;
    if (!st) {
        clip_text_embed(be, w, z, packed, B, T);
        st = tower_forward(be, &w->tower, z, B, T, 1, s, hook, hook_ctx, err);
    }
    if (!st) st = clip_text_head(be, w, z, B, T, pool_pos, pooled, embeds, s, err);
    free(packed);
    free(pool_pos);
    return st;
}
