/* The CLIP towers (MODEL.md §1) written once against the backend table: weight binding from
 * safetensors by HF names, embeddings, pre-LN layers split into an attention step and an MLP
 * step (so adapters can run between and after them), heads and whole-tower forwards.
 * Not for: tokenizing, preprocessing or the public API (model.c); adapters (their own module). */
#ifndef TL_CLIP_H
#define TL_CLIP_H

#include <stdint.h>

#include "backend.h"
#include "config.h"
#include "safetensors.h"

/* bfloat16 copies of one layer's Linear weights (the caption decoder's, decode_bf16.c). */
typedef struct clip_layer_bf16 {
    const tl_bf16 *q, *k, *v, *out, *fc1, *fc2;
} clip_layer_bf16;

/* One pre-LN encoder layer's weights (pointers into the mapping; linear weights [out, in]). */
typedef struct clip_layer_w {
    const float *ln1_w, *ln1_b;                     /* [D] */
    const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [D,D], [D] */
    const float *out_w, *out_b;                     /* [D,D], [D] */
    const float *ln2_w, *ln2_b;                     /* [D] */
    const float *fc1_w, *fc1_b;                     /* [I,D], [I] */
    const float *fc2_w, *fc2_b;                     /* [D,I], [D] */
    const clip_layer_bf16 *bf16; /* NULL, or copies used instead: only the caption decoder's
                                  * view of the text tower has them (decode_bf16.c) */
} clip_layer_w;

/* w's bfloat16 copies, or all NULL. */
static inline clip_layer_bf16 clip_layer_bf16_of(const clip_layer_w *w) {
    return w->bf16 ? *w->bf16 : (clip_layer_bf16){0};
}

/* A stack of layers: width D, heads H of head_dim D/H, MLP width I. */
typedef struct clip_tower {
    int width, heads, head_dim, mlp, n_layers;
    float eps;
    clip_layer_w *layers; /* [n_layers], owned */
} clip_tower;

typedef struct clip_vision_w {
    clip_tower tower;
    int channels, image_size, patch, grid, tokens; /* tokens = grid² + 1 */
    const float *patch_w;                          /* [D, C·p·p] (conv weight, no bias) */
    const float *class_emb;                        /* [D] */
    const float *pos_emb;                          /* [tokens, D] */
    const float *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b; /* [D] */
    const float *proj;                                        /* [P, D] */
    int projection_dim;                                       /* P */
} clip_vision_w;

typedef struct clip_text_w {
    clip_tower tower;
    int vocab, positions;
    const float *tok_emb;                 /* [vocab, D] */
    const float *pos_emb;                 /* [positions, D] */
    const float *final_ln_w, *final_ln_b; /* [D] */
    const float *proj;                    /* [P, D] */
    int projection_dim;                   /* P */
} clip_text_w;

typedef struct clip_weights {
    clip_vision_w vision;
    clip_text_w text;
    int projection_dim;
    float logit_scale; /* the raw tensor value (exp gives the multiplier) */
} clip_weights;

/* Binds every CLIP tensor of f by its HF name, checking shapes against cfg. Unknown extra
 * tensors are ignored. Errors name the tensor. The pointers borrow f (which must outlive w);
 * free w with clip_weights_free. */
tl_status clip_bind(clip_weights *w, st_file *f, const clip_config *cfg, tl_error *err);
void clip_weights_free(clip_weights *w);

/* Activation memory, grown on demand from the backend and reused across calls.
 * `layer` holds a layer step's temporaries (clobbered by every clip_layer_* call);
 * `tower` holds a whole-tower forward's state. Free with clip_scratch_free. */
typedef struct clip_arena {
    float *p;
    size_t cap; /* floats */
} clip_arena;

typedef struct clip_scratch {
    tl_backend *be;
    clip_arena layer, tower;
} clip_scratch;

void clip_scratch_init(clip_scratch *s, tl_backend *be);
void clip_scratch_free(clip_scratch *s);
/* Returns arena a's buffer of at least `floats` floats, still owned by the arena (freed by
 * clip_scratch_free; contents are not kept when it grows); NULL with err when out of memory.
 * Arenas other than s->layer/s->tower (a caller's own) are freed with s->be->free(a->p). */
float *clip_arena_reserve(clip_scratch *s, clip_arena *a, size_t floats, tl_error *err);

/* What a layer step keeps for a backward pass (training): caller buffers of M = B·T rows. The
 * inference path passes NULL and the step uses the scratch instead. */
typedef struct clip_layer_record {
    float *ln1;   /* [M, D] LN1(z) */
    float *qkv;   /* [M, 3D]: Q | K | V */
    float *probs; /* [B, H, T, T] attention probabilities */
    float *att;   /* [M, D] attention output, heads concatenated */
    float *ln2;   /* [M, D] LN2(z') */
    float *fc1;   /* [M, I] fc1 output (quick_gelu input) */
    float *act;   /* [M, I] quick_gelu output */
} clip_layer_record;

/* zp[B,T,D] = z + out_proj(MHA(LN1(z))), z [B,T,D]; zp may equal z. causal: text mask;
 * key_len: per-item key counts or NULL. rec: NULL, or ln1, qkv, probs and att are kept there
 * (then s may be NULL). */
tl_status clip_layer_attn_forward(tl_backend *be, const clip_tower *tower, int l, float *zp,
                                  const float *z, int B, int T, int causal, const int *key_len,
                                  const clip_layer_record *rec, clip_scratch *s, tl_error *err);

/* out[B,T,D] = zp + fc2(quick_gelu(fc1(LN2(zp)))); out may equal zp. Callers with adapters
 * add their terms into out afterwards. rec: NULL, or ln2, fc1 and act are kept there (then s
 * may be NULL). */
tl_status clip_layer_mlp_forward(tl_backend *be, const clip_tower *tower, int l, float *out,
                                 const float *zp, int B, int T, const clip_layer_record *rec,
                                 clip_scratch *s, tl_error *err);

/* Optional per-layer capture: index 0 = the tower's input state (after pre_layrnorm for
 * vision, the embeddings for text), index l+1 = layer l's output; z is [B,T,D]. */
typedef void (*clip_layer_hook)(void *ctx, int index, const float *z, int B, int T, int D);

/* What clip_vision_embed keeps for a backward pass (training): caller buffers, or NULL on the
 * inference path (then the scratch and z serve). */
typedef struct clip_embed_record {
    float *patches; /* [B·tokens, C·p·p] im2col rows, CLS rows zero */
    float *emb;     /* [B·tokens, D] before pre_layrnorm */
} clip_embed_record;

/* z[B,tokens,D] = pre_layrnorm(patches·Wᵀ with CLS prepended + positions), pixels [B,C,S,S].
 * rec: NULL, or the patches and embeddings are kept there (then s may be NULL). */
tl_status clip_vision_embed(tl_backend *be, const clip_vision_w *w, float *z, const float *pixels,
                            int B, const clip_embed_record *rec, clip_scratch *s, tl_error *err);

/* pooled[B,D] = LN(z rows `rows`) (weights ln_w, ln_b), embeds[B,P] = pooled·projᵀ; either
 * output may be NULL. gathered: NULL (the scratch serves), or [B,D] keeping the gathered rows
 * for a backward pass (then s may be NULL). */
tl_status clip_pool_and_project(tl_backend *be, const float *z, const int32_t *rows, int B, int D,
                                float eps, const float *ln_w, const float *ln_b, const float *proj,
                                int P, float *gathered, float *pooled, float *embeds,
                                clip_scratch *s, tl_error *err);

/* pooled[B,D] = post_layernorm(z[:,0]) and embeds[B,P] = pooled·projᵀ from the last layer's
 * state z [B,tokens,D]; either output may be NULL. */
tl_status clip_vision_head(tl_backend *be, const clip_vision_w *w, const float *z, int B,
                           float *pooled, float *embeds, clip_scratch *s, tl_error *err);

/* pixels [B,C,S,S] -> pooled [B,D] / embeds [B,P] (NOT normalised; either may be NULL). */
tl_status clip_vision_forward(tl_backend *be, const clip_vision_w *w, const float *pixels, int B,
                              float *pooled, float *embeds, clip_scratch *s, clip_layer_hook hook,
                              void *hook_ctx, tl_error *err);

/* The pooling position of one id row: the first position holding the row's highest id. */
int clip_text_pool_position(const int32_t *ids, int n);

/* Validates ids rows [B, stride] (every id < vocab, pool position < the context length) and
 * packs positions 0..T-1 (T = the largest pool position + 1) into packed[B, T] (caller memory of
 * B·stride); pool_pos[b] gets row b's pooling (EOS) position. Used by the CLIP and task towers. */
tl_status clip_text_pack_ids(const clip_text_w *w, const int32_t *ids, int stride, int B,
                             int32_t *packed, int *pool_pos, int *T_out, tl_error *err);

/* z[B,T,D] = tok_emb[ids] + pos_emb[0..T), ids [B,T] packed (validated < vocab by caller). */
void clip_text_embed(tl_backend *be, const clip_text_w *w, float *z, const int32_t *ids, int B,
                     int T);

/* pooled[B,D] = final_layer_norm(z[b, pool_pos[b]]), embeds[B,P] = pooled·projᵀ, from the last
 * layer's state z [B,T,D]; either output may be NULL. */
tl_status clip_text_head(tl_backend *be, const clip_text_w *w, const float *z, int B, int T,
                         const int *pool_pos, float *pooled, float *embeds, clip_scratch *s,
                         tl_error *err);

/* ids: B rows of ids_stride ids (≤ positions used: runs positions 0..max pool position only)
 * -> pooled [B,D] / embeds [B,P] (NOT normalised; either may be NULL). */
tl_status clip_text_forward(tl_backend *be, const clip_text_w *w, const int32_t *ids,
                            int ids_stride, int B, float *pooled, float *embeds, clip_scratch *s,
                            clip_layer_hook hook, void *hook_ctx, tl_error *err);

#endif
