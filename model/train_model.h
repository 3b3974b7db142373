/* The trainable FAME-ViL model (MODEL.md §1–3, §5): every tensor in one parameter set per part
 * (CLIP, each task's TSA, XAA, each head, NTM), with gradients only for trained parts, and the
 * structs of (value, gradient) pointers that the training forwards and backwards read.
 * Not for: inference (clip.c, adapter.c, ntm.c bind read-only weights zero-copy). */
#ifndef TL_TRAIN_MODEL_H
#define TL_TRAIN_MODEL_H

#include <jansson.h>

#include "backend.h"
#include "config.h"
#include "param_set.h"
#include "tailor_model.h" /* tl_task */

/* Linear y = x·wᵀ + b (w [out, in]; b may be NULL); LayerNorm weight and bias. A gradient
 * pointer is NULL when its part is not trained. */
typedef struct tr_linear {
    float *w, *b, *dw, *db;
} tr_linear;
typedef struct tr_norm {
    float *w, *b, *dw, *db;
} tr_norm;

/* A(x) = s·(up·relu(down·LN(x) + b_down) + b_up), width dim, bottleneck rank. */
typedef struct tr_adapter {
    int dim, rank;
    tr_norm ln;
    tr_linear down, up;
    float *s, *ds; /* [1] */
} tr_adapter;

/* Cross-attention adapter of a stream of width dq, heads of dq/heads, reading width dc. */
typedef struct tr_xaa {
    int dq, dc, heads;
    tr_norm ln_q, ln_kv;
    tr_linear q, k, v;
    tr_adapter adapter;
} tr_xaa;

typedef struct tr_layer {
    tr_norm ln1, ln2;
    tr_linear q, k, v, out, fc1, fc2;
} tr_layer;

typedef struct tr_tower {
    int width, heads, head_dim, mlp, n_layers;
    float eps;
    tr_layer *layers;               /* [n_layers], owned */
    tr_adapter *tsa[TL_TASK_COUNT]; /* [n_layers] each, owned */
    tr_xaa *xaa;                    /* [n_layers], owned */
} tr_tower;

typedef struct tr_vision {
    tr_tower tower;
    int channels, image_size, patch, tokens; /* tokens = (image/patch)² + 1 */
    tr_linear patch_embed;                   /* w [D, C·p·p], no bias */
    float *class_emb, *dclass_emb;           /* [D] */
    float *pos_emb, *dpos_emb;               /* [tokens, D] */
    tr_norm pre_ln, post_ln;
    tr_linear proj; /* [P, D], no bias */
} tr_vision;

typedef struct tr_text {
    tr_tower tower;
    int vocab, positions;
    float *tok_emb, *dtok_emb; /* [vocab, D] (dense gradient) */
    float *pos_emb, *dpos_emb; /* [positions, D] */
    tr_norm final_ln;
    tr_linear proj; /* [P, D], no bias */
} tr_text;

typedef struct tr_ntm_block {
    int in_dim;                    /* P for block 0, 2P after */
    tr_linear lstm_ih;             /* [4H, in + W], [4H]; gates i, f, g, o */
    tr_linear lstm_hh;             /* [4H, H], [4H] */
    tr_linear read, write;         /* [W + 6, H], [3W + 6, H] with biases */
    tr_linear out;                 /* [P, H + W], [P] */
    float *mem_init, *dmem_init;   /* [N, W] */
    float *read_init, *dread_init; /* [W] */
} tr_ntm_block;

typedef struct tr_ntm {
    int blocks, slots, width, hidden, proj;
    tr_ntm_block *block;   /* [blocks], owned */
    float *scale, *dscale; /* σ_ntm [1] */
} tr_ntm;

/* Parts, each one parameter set (and one learning-rate group by default). */
typedef enum train_part {
    TRAIN_PART_CLIP,
    TRAIN_PART_TSA_XMR, /* + task for each task */
    TRAIN_PART_TSA_TGIR,
    TRAIN_PART_TSA_SCR,
    TRAIN_PART_TSA_FIC,
    TRAIN_PART_XAA,
    TRAIN_PART_HEAD_XMR, /* + task for each task */
    TRAIN_PART_HEAD_TGIR,
    TRAIN_PART_HEAD_SCR,
    TRAIN_PART_HEAD_FIC,
    TRAIN_PART_NTM,
    TRAIN_PART_COUNT
} train_part;

typedef struct train_model {
    tl_backend *be; /* borrowed */
    clip_config cfg;
    int projection_dim, adapter_dim, xaa_dim, scr_classes;
    param_set parts[TRAIN_PART_COUNT];
    tr_vision vision;
    tr_text text;
    float *logit_scale, *dlogit_scale;     /* [] (no task reaches it) */
    float *head_scale[2], *dhead_scale[2]; /* σ of heads.xmr, heads.tgir [1] */
    tr_linear scr_head;                    /* [classes, P], [classes] */
    tr_linear fic_head;                    /* [vocab, Dt], [vocab] */
    tr_ntm ntm;
} train_model;

const char *train_part_name(train_part part);

/* How train_model_open treats a checkpoint. */
typedef struct train_open_options {
    unsigned trained;     /* bit (1 << part): that part gets gradients */
    const json_t *tailor; /* the "tailor" object when config.json has none (borrowed), or NULL */
    int allow_missing;    /* a part with none of its tensors present stays zero (for the
                             trainer to initialise) instead of being an error */
} train_open_options;

/* Loads the checkpoint directory dir (config.json, model.safetensors) into freshly allocated
 * parameter sets: the CLIP part always, each other part when the checkpoint holds it (a part
 * with only some of its tensors is an error naming the first missing one). The sizes of the
 * FAME-ViL parts come from config.json's "tailor" object, else opt->tailor. *missing (may be
 * NULL) gets the bits of the parts left zero. On success free m with train_model_free. */
tl_status train_model_open(train_model *m, tl_backend *be, const char *dir,
                           const train_open_options *opt, unsigned *missing, tl_error *err);

/* train_model_open of a complete checkpoint: config.json has the "tailor" object (adapter_dim,
 * xaa_dim, scr_labels, ntm) and model.safetensors every tensor of every part. trained: bit
 * (1 << part) gives that part gradients. On success free m with train_model_free. */
tl_status train_model_load(train_model *m, tl_backend *be, const char *dir, unsigned trained,
                           tl_error *err);
void train_model_free(train_model *m);

void train_model_zero_grad(train_model *m);

/* Writes every parameter of every part to the safetensors file path (F32, MODEL.md §5 names),
 * atomically (st_write). With the checkpoint's config.json beside it, the directory loads
 * again with train_model_load and serves as a checkpoint. */
tl_status train_model_save(const train_model *m, const char *path, tl_error *err);

/* The gradient of the parameter called name (NULL when absent or untrained); *numel its size. */
const float *train_model_grad(const train_model *m, const char *name, size_t *numel);

#endif
