/* FAME-ViL parameters of a checkpoint (MODEL.md §2, §5): config.json "tailor" and the
 * adapter, XAA and head tensors, bound zero-copy through st_get_f32, with the capabilities
 * their presence gives. Not for: the CLIP towers (clip.c) or the NTM (ntm*.c). */
#ifndef TL_TAILOR_PARAMS_H
#define TL_TAILOR_PARAMS_H

#include "backend.h" /* tl_bf16 */
#include "config.h"
#include "error.h"
#include "safetensors.h"
#include "tailor_model.h" /* tl_task, tl_task_name */

/* A(x) = scale·(up·relu(down·LN(x) + down_b) + up_b), width dim, bottleneck rank. */
typedef struct adapter_params {
    int dim, rank;
    const float *ln_w, *ln_b;     /* [dim] */
    const float *down_w, *down_b; /* [rank, dim], [rank] */
    const float *up_w, *up_b;     /* [dim, rank], [dim] */
    const float *scale;           /* [1] */
} adapter_params;

/* Cross-attention adapter of a stream of width dq reading a stream of width dc. */
typedef struct xaa_params {
    int dq, dc, heads;              /* heads: the querying stream's own head count */
    const float *ln_q_w, *ln_q_b;   /* [dq] */
    const float *ln_kv_w, *ln_kv_b; /* [dc] */
    const float *q_w, *q_b;         /* [dq, dq], [dq] */
    const float *k_w, *k_b;         /* [dq, dc], [dq] */
    const float *v_w, *v_b;         /* [dq, dc], [dq] */
    adapter_params adapter;         /* width dq, rank xaa_dim */
    const tl_bf16 *q_bf16;          /* bfloat16 copy of q_w used instead, or NULL: only the caption
                                     * decoder's view has one (decode_bf16.c) */
} xaa_params;

/* One encoder's adapters: tsa[task] and xaa are arrays of n_layers, or NULL when absent. */
typedef struct tower_adapters {
    int n_layers, width, heads;
    adapter_params *tsa[TL_TASK_COUNT];
    xaa_params *xaa;
} tower_adapters;

/* Capability bits; a part is present only when every one of its tensors is. */
enum {
    TL_PART_TSA_XMR = 1u << 0, /* TL_PART_TSA_XMR << task for each task */
    TL_PART_TSA_TGIR = 1u << 1,
    TL_PART_TSA_SCR = 1u << 2,
    TL_PART_TSA_FIC = 1u << 3,
    TL_PART_XAA = 1u << 4,
    TL_PART_HEAD_XMR = 1u << 5, /* TL_PART_HEAD_XMR << task for each task */
    TL_PART_HEAD_TGIR = 1u << 6,
    TL_PART_HEAD_SCR = 1u << 7,
    TL_PART_HEAD_FIC = 1u << 8,
};

typedef struct tailor_params {
    int format, adapter_dim, xaa_dim;
    unsigned parts; /* TL_PART_* bits present */
    tower_adapters vision, text;
    float head_scale[2];        /* σ of heads.xmr / heads.tgir (host copies) */
    int scr_classes;            /* = number of scr_labels */
    char **scr_labels;          /* [scr_classes], owned */
    const float *scr_w, *scr_b; /* [classes, P], [classes] */
    const float *fic_w, *fic_b; /* [vocab, Dt], [vocab] */
} tailor_params;

/* Reads cfg's "tailor" object (absent: zero-shot, no parts) and binds every FAME-ViL tensor
 * present in st with the shapes cfg gives. A part with only some of its tensors, a
 * wrong shape or a malformed "tailor" object is an error naming the tensor or field.
 * *out is owned by the caller (tailor_params_free); its tensors point into st, which must
 * outlive it. */
tl_status tailor_params_load(tailor_params **out, const clip_config *cfg, st_file *st,
                             tl_error *err);
void tailor_params_free(tailor_params *p);

#endif
