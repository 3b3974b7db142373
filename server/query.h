/* Turning a parsed search or turn request into a batch job and, once its embeddings are back,
 * into one query embedding. Composition in this first version: the normalised sum of the
 * parts (text, and image or reference item), standing in for FAME-ViL's composed retrieval
 * until the task API lands. Not for: ranking (search_service.h) or session memory
 * (session_memory.h). */
#ifndef TAILORD_QUERY_H
#define TAILORD_QUERY_H

#include "batcher.h"
#include "request_body.h"

typedef struct query_plan {
    int text_row, image_row; /* rows of the job's embeddings, -1 when absent */
    int64_t item_id;         /* reference item, -1 when absent */
} query_plan;

/* A job embedding q's text and image (their buffers move into the job; q keeps its filter
 * and item id). NULL when out of memory. */
batch_job *query_job_new(search_request *q, query_plan *plan, batch_done_fn done, void *ctx);

/* Writes the query embedding out[dim] from the job's rows. TL_ERR_NOT_FOUND when the
 * reference item is unknown. *mode gets "text", "image", "item" or "composed". */
tl_status query_compose(engine *eng, const query_plan *plan, const float *rows, float *out,
                        const char **mode, tl_error *err);

#endif
