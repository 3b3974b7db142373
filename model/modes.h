/* The layer order of FAME-ViL's fusion and generative modes (MODEL.md §2), written once for
 * inference (towers.c) and training (train_tasks.c), which supply the steps.
 * Not for: the steps themselves, or the contrastive mode (one stream: attention, MLP + TSA). */
#ifndef TL_MODES_H
#define TL_MODES_H

#include "error.h"

typedef enum mode_stream { MODE_VISION, MODE_TEXT } mode_stream;

/* The steps of stream s at layer l; ctx is the caller's state. */
typedef struct mode_steps {
    /* z' = z + MHSA(LN1(z)) */
    tl_status (*attn)(void *ctx, mode_stream s, int l);
    /* out = z' + MLP(LN2(z')) + TSA(z') */
    tl_status (*mlp_tsa)(void *ctx, mode_stream s, int l);
    /* out += XAA(z', y): y is the other stream's z' (fusion) or vision layer l's output
     * (generative) */
    tl_status (*xaa)(void *ctx, mode_stream s, int l);
} mode_steps;

/* Fusion layer l: both self-attentions (vision first), then in each stream, vision first,
 * MLP + TSA and XAA. */
tl_status mode_fusion_layer(const mode_steps *steps, void *ctx, int l);

/* Generative text layer l: attention, MLP + TSA_fic, XAA. */
tl_status mode_generative_layer(const mode_steps *steps, void *ctx, int l);

#endif
