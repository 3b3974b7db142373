/* batcher.h: two FIFO queues under one mutex, one worker thread, and the batch runner that
 * decodes images, embeds texts, images and pairs in chunks of max_batch, and scatters the rows back
 * to their jobs, one by one or grouped by done_together. */
#include "batcher.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embedding_space.h"
#include "image.h"
#include "metrics.h"

struct batcher {
    engine_slot *slot;
    batcher_opts opts;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    batch_job *head[2], *tail[2];
    long depth;
    int stopping;
};

static long job_cost(const batch_job *job) {
    return job->n_inputs > 0 ? job->n_inputs : 1;
}

batch_job *batch_job_new(int n_inputs, batch_priority priority, batch_done_fn done, void *ctx) {
    batch_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    job->inputs = n_inputs ? calloc((size_t)n_inputs, sizeof *job->inputs) : NULL;
    if (n_inputs && !job->inputs) {
        free(job);
        return NULL;
    }
    job->n_inputs = n_inputs;
    job->priority = priority;
    job->done = done;
    job->ctx = ctx;
    return job;
}

void batch_job_free(batch_job *job) {
    if (!job) return;
    for (int i = 0; i < job->n_inputs; i++) {
        free(job->inputs[i].text);
        free(job->inputs[i].image);
        free(job->inputs[i].image_path);
    }
    free(job->inputs);
    free(job);
}

int batcher_submit(batcher *b, batch_job *job) {
    pthread_mutex_lock(&b->lock);
    long limit = job->priority == BATCH_BULK ? b->opts.queue_bulk_max : b->opts.queue_max;
    int refused = b->stopping || (b->depth > 0 && b->depth + job_cost(job) > limit);
    if (!refused) {
        int q = job->priority == BATCH_BULK;
        job->next = NULL;
        if (b->tail[q])
            b->tail[q]->next = job;
        else
            b->head[q] = job;
        b->tail[q] = job;
        b->depth += job_cost(job);
        pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->lock);
    return refused ? -1 : 0;
}

long batcher_queue_depth(batcher *b) {
    pthread_mutex_lock(&b->lock);
    long depth = b->depth;
    pthread_mutex_unlock(&b->lock);
    return depth;
}

/* Pops the oldest interactive job, else the oldest bulk job; lock held. */
static batch_job *pop_job(batcher *b) {
    int q = b->head[0] ? 0 : 1;
    batch_job *job = b->head[q];
    if (!job) return NULL;
    b->head[q] = job->next;
    if (!b->head[q]) b->tail[q] = NULL;
    job->next = NULL;
    b->depth -= job_cost(job);
    return job;
}

/* ---- running one batch ---- */

typedef struct batch_run {
    batch_job **jobs;
    int n_jobs;
    int *row_offset;  /* per job: its first row in out */
    tl_error *errors; /* per job */
    float *out;       /* [rows, dim] */
    int rows, dim;
    /* per job, for done_together: the job's rows, then a group's jobs, rows and errors */
    const float **job_rows;
    batch_job **group;
    const float **group_rows;
    tl_error *group_errors;
} batch_run;

typedef enum input_kind { KIND_TEXT, KIND_IMAGE, KIND_PAIR } input_kind;

static input_kind kind_of(const batch_input *in) {
    int image = in->image || in->image_path;
    return image ? (in->text ? KIND_PAIR : KIND_IMAGE) : KIND_TEXT;
}

/* One chunk of at most max_batch inputs of one kind, waiting for its forward pass. */
typedef struct chunk_buffers {
    const char **texts;
    tl_image *images;
    int *rows, *owner; /* destination row in run->out, job index */
    float *embeddings; /* [max_batch, dim] */
    int n;
} chunk_buffers;

/* Runs the forward pass for the chunk and scatters its rows; a model error goes to every job
 * with an input in the chunk. */
static void flush_chunk(engine *eng, batch_run *run, chunk_buffers *c, input_kind kind) {
    if (!c->n) return;
    tl_error err = {0};
    tl_status st =
        kind == KIND_TEXT ? space_embed_texts(eng->model, c->texts, c->n, c->embeddings, &err)
        : kind == KIND_IMAGE
            ? space_embed_images(eng->model, SPACE_XMR, c->images, c->n, c->embeddings, &err)
            : space_compose(eng->model, c->images, c->texts, c->n, c->embeddings, &err);
    metrics_observe_batch(c->n);
    size_t dim = (size_t)run->dim;
    for (int k = 0; k < c->n; k++) {
        if (st && !run->errors[c->owner[k]].code) run->errors[c->owner[k]] = err;
        memcpy(run->out + (size_t)c->rows[k] * dim, c->embeddings + (size_t)k * dim,
               dim * sizeof(float));
        img_free(&c->images[k]);
    }
    c->n = 0;
}

/* Decodes the image of in (bytes or file) into out. */
static tl_status decode_input(batcher *b, const batch_input *in, tl_image *out, tl_error *err) {
    img_decode_opts opts = {.max_pixels = b->opts.max_pixels, .apply_exif = 1};
    return in->image ? img_decode(in->image, in->image_len, &opts, out, err)
                     : img_load_file(in->image_path, &opts, out, err);
}

/* Embeds every input of one kind of the jobs still without error. */
static void embed_kind(batcher *b, engine *eng, batch_run *run, input_kind kind) {
    int max = b->opts.max_batch;
    chunk_buffers c = {malloc((size_t)max * sizeof *c.texts),
                       calloc((size_t)max, sizeof *c.images),
                       malloc((size_t)max * sizeof *c.rows),
                       malloc((size_t)max * sizeof *c.owner),
                       malloc((size_t)max * (size_t)run->dim * sizeof *c.embeddings),
                       0};
    int ok = c.texts && c.images && c.rows && c.owner && c.embeddings;
    for (int j = 0; j < run->n_jobs; j++) {
        batch_job *job = run->jobs[j];
        for (int i = 0; i < job->n_inputs && !run->errors[j].code; i++) {
            batch_input *in = &job->inputs[i];
            if (kind_of(in) != kind) continue;
            if (!ok) {
                tl_fail(&run->errors[j], TL_ERR_NOMEM, "batch buffers");
                break;
            }
            if (kind != KIND_TEXT && decode_input(b, in, &c.images[c.n], &run->errors[j])) break;
            c.texts[c.n] = in->text;
            c.rows[c.n] = run->row_offset[j] + i;
            c.owner[c.n++] = j;
            if (c.n == max) flush_chunk(eng, run, &c, kind);
        }
    }
    flush_chunk(eng, run, &c, kind);
    free(c.texts);
    free(c.images);
    free(c.rows);
    free(c.owner);
    free(c.embeddings);
}

/* Hands the jobs left in run->jobs (those with done_together, rows and errors in run) to their
 * functions: one call per function with its jobs in order; frees the jobs. */
static void answer_together(batch_run *run, engine *eng) {
    for (int j = 0; j < run->n_jobs; j++) {
        if (!run->jobs[j]) continue;
        batch_done_together_fn fn = run->jobs[j]->done_together;
        int n = 0;
        for (int k = j; k < run->n_jobs; k++) {
            if (!run->jobs[k] || run->jobs[k]->done_together != fn) continue;
            run->group[n] = run->jobs[k];
            run->group_rows[n] = run->job_rows[k];
            run->group_errors[n++] = run->errors[k];
            run->jobs[k] = NULL;
        }
        fn(run->group, n, eng, run->group_rows, run->dim, run->group_errors);
        for (int k = 0; k < n; k++) batch_job_free(run->group[k]);
    }
}

static int alloc_run(batch_run *run) {
    size_t n = (size_t)run->n_jobs;
    run->row_offset = malloc(n * sizeof *run->row_offset);
    run->errors = calloc(n, sizeof *run->errors);
    run->job_rows = malloc(n * sizeof *run->job_rows);
    run->group = malloc(n * sizeof *run->group);
    run->group_rows = malloc(n * sizeof *run->group_rows);
    run->group_errors = malloc(n * sizeof *run->group_errors);
    for (int j = 0; run->row_offset && j < run->n_jobs; j++) {
        run->row_offset[j] = run->rows;
        run->rows += run->jobs[j]->n_inputs;
    }
    run->out = malloc((size_t)(run->rows ? run->rows : 1) * (size_t)(run->dim ? run->dim : 1) *
                      sizeof(float));
    return run->row_offset && run->errors && run->job_rows && run->group && run->group_rows &&
           run->group_errors && run->out;
}

static void free_run(batch_run *run) {
    free(run->row_offset);
    free(run->errors);
    free(run->job_rows);
    free(run->group);
    free(run->group_rows);
    free(run->group_errors);
    free(run->out);
}

static void run_batch(batcher *b, batch_job **jobs, int n_jobs) {
    engine *eng = engine_acquire(b->slot);
    batch_run run = {
        .jobs = jobs, .n_jobs = n_jobs, .dim = eng ? search_service_dim(eng->search) : 0};
    int ok = alloc_run(&run);
    if (ok && eng && run.rows) {
        embed_kind(b, eng, &run, KIND_TEXT);
        embed_kind(b, eng, &run, KIND_IMAGE);
        embed_kind(b, eng, &run, KIND_PAIR);
    }
    for (int j = 0; j < n_jobs; j++) {
        tl_error err = {0};
        if (!eng)
            tl_fail(&err, TL_ERR_UNAVAILABLE, "no model and index loaded");
        else if (!ok)
            tl_fail(&err, TL_ERR_NOMEM, "batch buffers");
        else
            err = run.errors[j];
        const float *rows =
            err.code || !ok ? NULL : run.out + (size_t)run.row_offset[j] * (size_t)run.dim;
        if (ok && jobs[j]->done_together) { /* answered below, with the others of its kind */
            run.errors[j] = err;
            run.job_rows[j] = rows;
            continue;
        }
        jobs[j]->done(jobs[j], eng, rows, run.dim, &err, jobs[j]->ctx);
        batch_job_free(jobs[j]);
        jobs[j] = NULL;
    }
    if (ok) answer_together(&run, eng);
    free_run(&run);
    engine_release(b->slot, eng);
}

static struct timespec deadline_after(double ms) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long ns = t.tv_nsec + (long)(ms * 1e6);
    t.tv_sec += ns / 1000000000L;
    t.tv_nsec = ns % 1000000000L;
    return t;
}

/* Takes the first job, then whatever arrives within the window up to max_batch inputs. */
static int collect_batch(batcher *b, batch_job **jobs, int max_jobs) {
    pthread_mutex_lock(&b->lock);
    while (!b->head[0] && !b->head[1] && !b->stopping) pthread_cond_wait(&b->wake, &b->lock);
    int n = 0;
    long inputs = 0;
    struct timespec deadline = deadline_after(b->opts.window_ms);
    while (n < max_jobs && inputs < b->opts.max_batch) {
        batch_job *job = pop_job(b);
        if (job) {
            jobs[n++] = job;
            inputs += job->n_inputs;
            continue;
        }
        if (b->stopping || pthread_cond_timedwait(&b->wake, &b->lock, &deadline) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&b->lock);
    return n;
}

static void *worker_main(void *arg) {
    batcher *b = arg;
    int max_jobs = b->opts.max_batch;
    batch_job **jobs = malloc((size_t)max_jobs * sizeof *jobs);
    for (;;) {
        int n = jobs ? collect_batch(b, jobs, max_jobs) : 0;
        if (n) {
            run_batch(b, jobs, n);
            continue;
        }
        pthread_mutex_lock(&b->lock);
        int done = b->stopping && !b->head[0] && !b->head[1];
        pthread_mutex_unlock(&b->lock);
        if (done || !jobs) break;
    }
    free(jobs);
    return NULL;
}

batcher *batcher_start(engine_slot *slot, const batcher_opts *opts) {
    batcher *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->slot = slot;
    b->opts = *opts;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&b->thread, NULL, worker_main, b)) {
        pthread_cond_destroy(&b->wake);
        pthread_mutex_destroy(&b->lock);
        free(b);
        return NULL;
    }
    return b;
}

void batcher_stop(batcher *b) {
    pthread_mutex_lock(&b->lock);
    int was_stopping = b->stopping;
    b->stopping = 1;
    pthread_cond_broadcast(&b->wake);
    pthread_mutex_unlock(&b->lock);
    if (!was_stopping) pthread_join(b->thread, NULL);
}

void batcher_free(batcher *b) {
    if (!b) return;
    batcher_stop(b);
    pthread_cond_destroy(&b->wake);
    pthread_mutex_destroy(&b->lock);
    free(b);
}
