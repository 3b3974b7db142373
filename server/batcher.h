/* Dynamic batching: one worker thread owns the model calls. Requests queue jobs (interactive
 * ahead of bulk); the worker takes every job that arrives within the batch window, up to the
 * batch size, embeds all their texts in one call, all their images in one call and all their
 * (image, text) pairs in one tl_compose call (embedding_space.h: texts and images in the XMR
 * space, pairs in the TGIR space), then hands each job its rows (jobs that ask for it together
 * with the batch's other jobs of their kind, so their follow-up work batches too). The queue is
 * bounded in inputs.
 * Not for: HTTP (the job's done callback answers) or searching (done callbacks do that). */
#ifndef TAILORD_BATCHER_H
#define TAILORD_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct batcher batcher;

typedef enum batch_priority { BATCH_INTERACTIVE, BATCH_BULK } batch_priority;

/* A text, an image (encoded bytes or a file), or both: a reference image refined by text,
 * embedded together by tl_compose (TGIR). */
typedef struct batch_input {
    char *text;     /* owned or NULL */
    uint8_t *image; /* owned encoded bytes (JPEG, PNG, WebP) or NULL */
    size_t image_len;
    char *image_path; /* owned path of an image file (catalogue item) or NULL */
} batch_input;

typedef struct batch_job batch_job;

/* Runs on the worker thread with the engine the batch used (NULL when none is loaded).
 * embeddings is [n_inputs, dim] (rows in input order) or NULL when err->code != TL_OK. The
 * callback owns nothing in job beyond its own ctx; the batcher frees the job afterwards. */
typedef void (*batch_done_fn)(batch_job *job, engine *eng, const float *embeddings, int dim,
                              const tl_error *err, void *ctx);

/* Optional, for work that batches across jobs (session turns: one NTM pass): the batch's jobs
 * whose done_together is the same function get one call of it, in submission order, with each
 * job's rows (as for done) and error, instead of one done call each. Same thread and ownership
 * as done; done still answers the job when the batch's buffers could not be allocated. */
typedef void (*batch_done_together_fn)(batch_job **jobs, int n, engine *eng,
                                       const float *const *rows, int dim, const tl_error *errs);

struct batch_job {
    batch_priority priority;
    batch_input *inputs; /* n_inputs entries, owned by the job */
    int n_inputs;
    batch_done_fn done;
    batch_done_together_fn done_together; /* NULL: done alone */
    void *ctx;
    batch_job *next;
};

typedef struct batcher_opts {
    double window_ms;
    int max_batch;
    long queue_max, queue_bulk_max; /* inputs waiting (a job without inputs counts as one) */
    size_t max_pixels;
} batcher_opts;

batcher *batcher_start(engine_slot *slot, const batcher_opts *opts);
/* Finishes queued jobs, then stops the worker; later submits are refused. */
void batcher_stop(batcher *b);
void batcher_free(batcher *b);

/* A new job with room for n_inputs inputs (zeroed); NULL when out of memory. */
batch_job *batch_job_new(int n_inputs, batch_priority priority, batch_done_fn done, void *ctx);
/* Frees a job not submitted (or refused). */
void batch_job_free(batch_job *job);
/* Queues job (taken over) and returns 0, or returns -1 when its queue is full (a job larger
 * than the limit still goes into an empty queue); the caller then still owns job. */
int batcher_submit(batcher *b, batch_job *job);
long batcher_queue_depth(batcher *b);

#endif
