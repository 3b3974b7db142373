/* The FAME-ViL state of a tl_model and the task forwards shared by tasks.c (public API),
 * towers.c (contrastive, fusion and generative modes) and decode.c (captions).
 * Not for: the CLI or the server, which use tailor_model.h only. */
#ifndef TL_TASKS_INTERNAL_H
#define TL_TASKS_INTERNAL_H

#include <stdint.h>

#include "model_internal.h"
#include "tailor_params.h"

/* The caption decoder's bfloat16 view (tl_model_opts.decode_bf16): the text tower and its XAA
 * with bfloat16 copies of their Linear weights (self-attention, MLP, XAA query), and a copy of
 * the fic head's; the fp32 pointers are m's own. */
typedef struct decode_bf16 {
    clip_tower tower; /* layers owned here, each pointing at its entry of layer_copies */
    clip_layer_bf16 *layer_copies; /* [n_layers], owned */
    xaa_params *xaa;               /* [n_layers], owned */
    const tl_bf16 *fic_w;          /* [vocab, Dt] */
    tl_bf16 *copies;               /* backend memory holding every copy */
    size_t bytes;                  /* of copies */
} decode_bf16;

typedef struct tl_tasks {
    tailor_params *p;
    decode_bf16 *bf16; /* NULL unless opened with decode_bf16 and captioning is available */
    tl_trace_fn trace;
    void *trace_ctx;
    clip_arena state;   /* tower states of one task forward */
    clip_arena memory;  /* generative mode: every vision layer's output */
    clip_arena scratch; /* adapter and XAA temporaries */
    clip_arena decoder; /* the caption decoder's caches and states, kept between captions */
} tl_tasks;

/* Loads the FAME-ViL parameters of m's checkpoint into m->tasks (called by tl_model_open). */
tl_status tasks_open(tl_model *m, tl_error *err);
/* Frees m->tasks (called by tl_model_close; NULL is fine). */
void tasks_close(tl_model *m);

/* Reports data of shape dims[0..ndim) to the trace callback under the printf-style name. */
void tasks_trace(const tl_model *m, const float *data, const int *dims, int ndim, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
/* Whether a trace callback is set (tracing costs extra buffers and copies). */
int tasks_tracing(const tl_model *m);

/* ---- towers.c ---- */

/* Contrastive vision with TSA_task (task -1: plain CLIP): embeds[B, P] projected CLS (NOT
 * normalised) of pixels[B, 3, S, S]. memory: NULL, or [L, B, tokens, Dv] receiving every
 * layer's output (generative mode's memory). */
tl_status task_vision_forward(tl_model *m, int task, const float *pixels, int B, float *embeds,
                              float *memory, tl_error *err);

/* Contrastive text with TSA_task: embeds[B, P] projected EOS of ids rows (stride ids_stride). */
tl_status task_text_forward(tl_model *m, int task, const int32_t *ids, int ids_stride, int B,
                            float *embeds, tl_error *err);

/* Fusion mode with TSA_task on B (pixels[b], ids row b) pairs: projected CLS and EOS
 * (either may be NULL) and fused = their sum, each [B, P]. */
tl_status task_fusion_forward(tl_model *m, int task, const float *pixels, const int32_t *ids,
                              int ids_stride, int B, float *image_embeds, float *text_embeds,
                              float *fused, tl_error *err);

/* Generative mode, teacher forcing on ids[B, T] (all positions run), memory from pixels[B]:
 * hidden[B, T, Dt] (may be NULL) final-LN states, logits[B, T, vocab]. */
tl_status fic_teacher_forward(tl_model *m, const float *pixels, const int32_t *ids, int B, int T,
                              float *hidden, float *logits, tl_error *err);

/* ---- decode_bf16.c ---- */

/* Builds m->tasks->bf16 when m can caption (else leaves it NULL); called by tl_model_open with
 * decode_bf16 set, after tasks_open. */
tl_status decode_bf16_open(tl_model *m, tl_error *err);
/* Frees m->tasks->bf16 (NULL is fine). */
void decode_bf16_close(tl_model *m);

/* ---- decode.c ---- */

/* Captions one preprocessed image pixels[3, S, S] with the key/value-cached decoder: greedy
 * (beam 1) or beam search, ids[max_tokens] SOS first. */
tl_status fic_caption(tl_model *m, const float *pixels, int beam, int max_tokens, int32_t *ids,
                      int *n_ids, tl_error *err);

#endif
