/* query.h: job building and the normalised-sum composition. */
#include "query.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

batch_job *query_job_new(search_request *q, query_plan *plan, batch_done_fn done, void *ctx) {
    int n = (q->text != NULL) + (q->image.bytes != NULL);
    batch_job *job = batch_job_new(n, BATCH_INTERACTIVE, done, ctx);
    if (!job) return NULL;
    *plan = (query_plan){-1, -1, q->item_id};
    int row = 0;
    if (q->text) {
        job->inputs[row].text = q->text;
        q->text = NULL;
        plan->text_row = row++;
    }
    if (q->image.bytes) {
        job->inputs[row].image = q->image.bytes;
        job->inputs[row].image_len = q->image.len;
        q->image.bytes = NULL;
        plan->image_row = row;
    }
    return job;
}

/* out += v / |v| */
static void add_normalised(float *out, const float *v, int dim) {
    double sum = 0;
    for (int i = 0; i < dim; i++) sum += (double)v[i] * v[i];
    float inv = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (int i = 0; i < dim; i++) out[i] += v[i] * inv;
}

tl_status query_compose(engine *eng, const query_plan *plan, const float *rows, float *out,
                        const char **mode, tl_error *err) {
    int dim = search_service_dim(eng->search), parts = 0;
    memset(out, 0, (size_t)dim * sizeof *out);
    *mode = "text";
    if (plan->text_row >= 0) {
        add_normalised(out, rows + (size_t)plan->text_row * (size_t)dim, dim);
        parts++;
    }
    if (plan->image_row >= 0) {
        add_normalised(out, rows + (size_t)plan->image_row * (size_t)dim, dim);
        *mode = "image";
        parts++;
    } else if (plan->item_id >= 0) {
        float *item = malloc((size_t)dim * sizeof *item);
        if (!item) return tl_fail(err, TL_ERR_NOMEM, "query");
        tl_status st = search_service_embedding(eng->search, plan->item_id, item, err);
        if (!st) add_normalised(out, item, dim);
        free(item);
        if (st) return st;
        *mode = "item";
        parts++;
    }
    if (parts > 1) *mode = "composed";
    return TL_OK;
}
