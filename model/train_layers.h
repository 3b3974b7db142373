/* Training forward/backward pairs (llm.c style) of the FAME-ViL building blocks: the pre-LN
 * CLIP layer split into its attention and MLP steps, the bottleneck adapter, the XAA, the
 * embeddings and the pooled heads. Forwards keep what their backward reads in a *_acts record
 * (buffers from a train_arena); backwards accumulate (+=) into input and parameter gradients,
 * which the caller zeroes. Rows are M = B·T. Not for: task wiring (train_tasks.c).
 * Forwards return TL_ERR_NOMEM when the arena runs out; backwards then stop early, leaving
 * ar->failed set for the caller to check. */
#ifndef TL_TRAIN_LAYERS_H
#define TL_TRAIN_LAYERS_H

#include <stdint.h>

#include "adapter.h"
#include "clip.h"
#include "error.h"
#include "train_arena.h"
#include "train_model.h"

/* ---- adapter: out += s·(up·relu(down·LN(x) + b_down) + b_up) ---- */
/* x, out [M, D] (out may not alias x); adapter.c's adapter_forward keeping acts. */
tl_status tr_adapter_forward(tl_backend *be, train_arena *ar, const tr_adapter *a,
                             adapter_record *acts, float *out, const float *x, int M);
/* dx [M, D] += from dout [M, D]; x as in the forward. */
void tr_adapter_backward(tl_backend *be, train_arena *ar, const tr_adapter *a,
                         const adapter_record *acts, float *dx, const float *dout, const float *x,
                         int M);

/* ---- XAA: out += A(concat_h softmax(Q_h K_hᵀ/√d + mask) V_h) ---- */
typedef struct tr_xaa_acts {
    int B, Tq, Tk;
    const int *key_len; /* borrowed, or NULL */
    xaa_record rec;     /* what adapter.c's xaa_forward keeps */
} tr_xaa_acts;

/* zp [B, Tq, Dq] queries, y [B, Tk, Dc] the other stream; key_len: keys ≥ key_len[b] masked
 * (NULL: none; borrowed until the backward). out [B, Tq, Dq]. adapter.c's xaa_forward. */
tl_status tr_xaa_forward(tl_backend *be, train_arena *ar, const tr_xaa *x, tr_xaa_acts *acts,
                         float *out, const float *zp, const float *y, int B, int Tq, int Tk,
                         const int *key_len);
/* dzp [B·Tq, Dq] and dy [B·Tk, Dc] += from dout [B·Tq, Dq]. */
void tr_xaa_backward(tl_backend *be, train_arena *ar, const tr_xaa *x, const tr_xaa_acts *acts,
                     float *dzp, float *dy, const float *dout, const float *zp, const float *y);

/* ---- one pre-LN layer: zp = z + MHSA(LN1(z)); out = zp + MLP(LN2(zp)) (+ adapters) ---- */
typedef struct tr_layer_acts {
    int B, T, causal;
    const float *z;        /* [M, D] the layer's input (borrowed: embeddings or previous out) */
    clip_layer_record rec; /* what clip.c's layer steps keep */
    float *zp;             /* [M, D] z' */
    float *out;            /* [M, D] layer output */
    float *dzp;            /* [M, D] gradient of z' (zeroed; adapters and XAA add to it) */
    float *dout;           /* [M, D] gradient of out (zeroed; the next layer or head adds to it) */
    adapter_record tsa;
    tr_xaa_acts xaa;
} tr_layer_acts;

/* acts->zp from z [B, T, D]; also allocates acts->out, dzp, dout. causal: text mask. */
tl_status tr_layer_attn_forward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                                tr_layer_acts *acts, const float *z, int B, int T, int causal);
/* dz [M, D] += from acts->dzp (complete: MLP, adapters and XAA backwards already added). */
void tr_layer_attn_backward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                            const tr_layer_acts *acts, float *dz);

/* acts->out = zp + fc2(quick_gelu(fc1(LN2(zp)))); adapters add into acts->out afterwards.
 * Both forwards are clip.c's layer steps with acts->rec as their record. */
tl_status tr_layer_mlp_forward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                               tr_layer_acts *acts);
/* acts->dzp += from acts->dout (the residual and the MLP). */
void tr_layer_mlp_backward(tl_backend *be, train_arena *ar, const tr_tower *t, int l,
                           tr_layer_acts *acts);

/* ---- embeddings ---- */
typedef struct tr_vision_embed_acts {
    clip_embed_record rec; /* patches and embeddings before pre_layrnorm */
    float *z;              /* [B·tokens, D] the tower input */
    float *dz;             /* its gradient (zeroed) */
} tr_vision_embed_acts;

/* pixels [B, C, S, S] -> acts->z = pre_layrnorm(patch·Wᵀ, CLS prepended, + positions). */
tl_status tr_vision_embed_forward(tl_backend *be, train_arena *ar, const tr_vision *v,
                                  tr_vision_embed_acts *acts, const float *pixels, int B);
void tr_vision_embed_backward(tl_backend *be, train_arena *ar, const tr_vision *v,
                              const tr_vision_embed_acts *acts, int B);

/* z [B·T, D] = tok_emb[ids] + pos_emb[0..T), ids [B, T]; dz [B·T, D] allocated zeroed. */
tl_status tr_text_embed_forward(tl_backend *be, train_arena *ar, const tr_text *t, float **z,
                                float **dz, const int32_t *ids, int B, int T);
void tr_text_embed_backward(tl_backend *be, const tr_text *t, const float *dz, const int32_t *ids,
                            int B, int T);

/* ---- pooled heads: embeds[B, P] = proj(LN(z[rows[b]])) ---- */
typedef struct tr_pool_acts {
    int B;
    const int32_t *rows; /* borrowed: the pooled row of each item in z */
    float *gathered;     /* [B, D] */
    float *pooled;       /* [B, D] after the norm */
    float *embeds;       /* [B, P] */
    float *dembeds;      /* [B, P] (zeroed; the loss adds to it) */
} tr_pool_acts;

tl_status tr_pool_forward(tl_backend *be, train_arena *ar, const tr_norm *ln, const tr_linear *proj,
                          int D, int P, float eps, tr_pool_acts *acts, const float *z,
                          const int32_t *rows, int B);
/* dz [·, D] rows[b] += from acts->dembeds. */
void tr_pool_backward(tl_backend *be, train_arena *ar, const tr_norm *ln, const tr_linear *proj,
                      int D, int P, float eps, const tr_pool_acts *acts, float *dz);

#endif
