/* query.h: one job input per query (text, image, or the pair), or none for an item alone. */
#include "query.h"

#include <stdlib.h>
#include <string.h>

batch_job *query_job_new(search_request *q, const char *item_image_path, query_plan *plan,
                         batch_done_fn done, void *ctx) {
    int item_pair = q->item_id >= 0 && q->text;
    int has_row = q->text || q->image.bytes;
    batch_job *job = batch_job_new(has_row, BATCH_INTERACTIVE, done, ctx);
    if (!job) return NULL;
    *plan = (query_plan){has_row, q->item_id, "item", SPACE_XMR};
    if (!has_row) return job;
    batch_input *in = &job->inputs[0];
    if (item_pair && !(in->image_path = strdup(item_image_path ? item_image_path : ""))) {
        batch_job_free(job);
        return NULL;
    }
    in->text = q->text;
    in->image = q->image.bytes;
    in->image_len = q->image.len;
    q->text = NULL;
    q->image.bytes = NULL;
    int composed = in->text && (in->image || in->image_path);
    plan->mode = composed ? "composed" : in->text ? "text" : "image";
    plan->space = composed ? SPACE_TGIR : SPACE_XMR;
    return job;
}

tl_status query_embedding(engine *eng, const query_plan *plan, const float *rows, float *out,
                          tl_error *err) {
    int dim = search_service_dim(eng->search);
    if (plan->has_row) {
        memcpy(out, rows, (size_t)dim * sizeof *out);
        return TL_OK;
    }
    return search_service_embedding(eng->search, plan->space, plan->item_id, out, err);
}
