/* The inside of a tl_model, for engine modules that extend it (adapters, heads, NTM, refcheck
 * and the benchmarks): the parsed config, the mapped weights, the backend and activation
 * memory. Not for: the CLI or the server, which use tailor_model.h only. */
#ifndef TL_MODEL_INTERNAL_H
#define TL_MODEL_INTERNAL_H

#include "backend.h"
#include "clip.h"
#include "config.h"
#include "safetensors.h"
#include "tailor_model.h"
#include "tokenizer.h"

/* Inputs per public call (tl_embed_*, tl_encode_*); larger requests are TL_ERR_LIMIT. */
#define TL_MODEL_MAX_BATCH 4096
/* Items per forward pass inside one call: bounds activation memory. */
#define TL_VISION_CHUNK 8
#define TL_TEXT_CHUNK   64

struct tl_model {
    clip_config cfg;
    st_file *st;
    tl_tokenizer *tok; /* NULL without vocab.json + merges.txt */
    tl_backend *be;
    clip_weights w;
    clip_scratch scratch;
    tl_model_info info;
    float *pixels; /* [TL_VISION_CHUNK,3,S,S] preprocessing buffer, backend memory */
    int32_t *ids;  /* [TL_TEXT_CHUNK, context] token buffer */
    /* FAME-ViL adapters, heads and their buffers (tasks.c) */
    struct tl_tasks *tasks;
};

#endif
