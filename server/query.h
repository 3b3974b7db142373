/* Turning a parsed search or turn request into a batch job and, once its embedding is back,
 * into one query embedding: a text, an image, a catalogue item's stored embedding, or a
 * reference (image or item) refined by text, composed by tl_compose (FAME-ViL's TGIR query;
 * the zero-shot n(n(v) + n(t)) for plain CLIP). This is also a session turn's input x_t.
 * Not for: ranking (search_service.h) or session memory (session_memory.h). */
#ifndef TAILORD_QUERY_H
#define TAILORD_QUERY_H

#include "batcher.h"
#include "request_body.h"

typedef struct query_plan {
    int has_row;           /* the job embeds one input (else: the item's stored embedding) */
    int64_t item_id;       /* reference item, -1 when absent */
    const char *mode;      /* "text", "image", "item" or "composed" */
    embedding_space space; /* the gallery to search: TGIR for composed queries, else XMR */
} query_plan;

/* A job for q: its text and image buffers move into the job (q keeps its filter and item id).
 * item_image_path is the reference item's image file (needed when q has item_id and text).
 * NULL when out of memory. */
batch_job *query_job_new(search_request *q, const char *item_image_path, query_plan *plan,
                         batch_done_fn done, void *ctx);

/* Writes the query embedding out[dim] from the job's row or the item's stored embedding in
 * plan->space (TL_ERR_NOT_FOUND when the item is gone). */
tl_status query_embedding(engine *eng, const query_plan *plan, const float *rows, float *out,
                          tl_error *err);

#endif
