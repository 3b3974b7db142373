/* The inside of a tl_model, for engine modules that extend it (adapters, heads, NTM, refcheck
 * and the benchmarks): the parsed config, the mapped weights, the backend and activation
 * memory. Not for: the CLI or the server, which use tailor_model.h only. */
#ifndef TL_MODEL_INTERNAL_H
#define TL_MODEL_INTERNAL_H

#include "backend.h"
#include "clip.h"
#include "config.h"
#include "ntm.h"
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
    ntm_weights *ntm; /* session memory: the CM-NTM or the decayed sum (session.c) */
};

/* TL_ERR_INVALID for a negative n or NULL items, TL_ERR_LIMIT above TL_MODEL_MAX_BATCH; what
 * names the batch in messages (model.c). */
tl_status model_check_batch(int n, const void *items, const char *what, tl_error *err);
/* Tokenizes texts[0..n) into ids[n, context length] (caller memory), 0-padded: each text
 * non-NULL and within TOK_MAX_TEXT_BYTES, TL_ERR_UNAVAILABLE without a tokenizer; messages
 * number the texts from first (model.c). */
tl_status model_tokenize_texts(const tl_model *m, const char *const *texts, int first, int n,
                               int32_t *ids, tl_error *err);

/* Binds m's session memory (config.json tailor.ntm + ntm.* tensors, else the decayed sum with
 * opts->session_decay) into m->ntm (session.c; called by tl_model_open). */
tl_status session_memory_open(tl_model *m, const tl_model_opts *opts, tl_error *err);
/* Releases m->ntm (called by tl_model_close; NULL is fine). */
void session_memory_close(tl_model *m);

#endif
