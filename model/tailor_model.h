/* Tailor's model engine: the one public header for the CLI, the server and the trainer's
 * evaluation. An opaque context loads a checkpoint directory (MODEL.md §5; a plain HF CLIP
 * directory is valid) and writes results into caller-owned buffers. Every call returns a
 * tl_status and fills a tl_error; nothing here exits or aborts on bad input.
 * A tl_model is not thread-safe: use it from one thread at a time. */
#ifndef TAILOR_MODEL_H
#define TAILOR_MODEL_H

#include <stdint.h>

#include "error.h"
#include "image.h"

#define TAILOR_VERSION "0.1.0"

typedef struct tl_model tl_model;

typedef struct tl_model_opts {
    int n_threads;       /* 0 = number of online CPUs */
    const char *backend; /* "cpu" (default) or "cuda" */
} tl_model_opts;

typedef struct tl_model_info {
    int projection_dim;              /* P: embedding width */
    int image_size;                  /* S: input pixels per side */
    int context_length;              /* text positions (77 for CLIP) */
    int vocab_size;
    int vision_width, vision_layers, vision_heads;
    int text_width, text_layers, text_heads;
    int has_tokenizer;               /* vocab.json + merges.txt present: text calls work */
} tl_model_info;

/* Opens checkpoint directory dir (config.json + model.safetensors or sharded index; weights
 * are memory-mapped, not copied). opts may be NULL. *out is owned by the caller. Missing or
 * mis-shaped tensors are TL_ERR_FORMAT / TL_ERR_NOT_FOUND errors naming the tensor. */
tl_status tl_model_open(tl_model **out, const char *dir, const tl_model_opts *opts,
                        tl_error *err);
void tl_model_close(tl_model *m);
const tl_model_info *tl_model_get_info(const tl_model *m);

/* Plain CLIP embeddings, L2-normalised, out[n, P]. Texts are tokenized and truncated to the
 * context length. */
tl_status tl_embed_texts(tl_model *m, const char *const *texts, int n, float *out,
                         tl_error *err);
tl_status tl_embed_images(tl_model *m, const tl_image *images, int n, float *out,
                          tl_error *err);

/* Preprocesses one decoded image into pixels[3, S, S] (CLIP normalisation). */
tl_status tl_preprocess_image(const tl_model *m, const tl_image *image, float *pixels,
                              tl_error *err);

/* Lower level: encoders on ready inputs, for refcheck and evaluation.
 * ids: n rows of ids_stride token ids each (each row holds its EOS; positions after the
 * first highest id are ignored). pixels: [n, 3, S, S].
 * pooled: [n, width] or NULL; embeds: [n, P] projected, NOT normalised. */
tl_status tl_encode_text_ids(tl_model *m, const int32_t *ids, int ids_stride, int n,
                             float *pooled, float *embeds, tl_error *err);
tl_status tl_encode_pixels(tl_model *m, const float *pixels, int n, float *pooled,
                           float *embeds, tl_error *err);

/* exp(logit_scale) of the checkpoint (100 for CLIP). */
float tl_model_logit_scale(const tl_model *m);

#endif
