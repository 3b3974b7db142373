/* Direct model endpoints: POST /v1/embed (bulk: texts and images to L2-normalised
 * embeddings), POST /v1/classify and /v1/caption (FAME-ViL tasks; answered 501 until the
 * engine's task API is available). */
#include <stdlib.h>

#include "app.h"

typedef struct embed_call {
    http_request *req;
    int n_texts, n_images;
} embed_call;

static json_t *rows_json(const float *rows, int first, int n, int dim) {
    json_t *out = json_array();
    for (int r = first; r < first + n; r++) {
        json_t *row = json_array();
        for (int i = 0; i < dim; i++)
            json_array_append_new(row, json_real(rows[(size_t)r * (size_t)dim + (size_t)i]));
        json_array_append_new(out, row);
    }
    return out;
}

static void embed_done(batch_job *job, engine *eng, const float *rows, int dim, const tl_error *err,
                       void *ctx) {
    embed_call *call = ctx;
    if (!eng)
        http_respond_error(call->req, API_NOT_READY, "model and index are not loaded yet");
    else if (err->code)
        app_respond_batch_error(call->req, err);
    else
        http_respond_json(call->req, 200,
                          json_pack("{s:o, s:o, s:i, s:s}", "texts",
                                    rows_json(rows, 0, call->n_texts, dim), "images",
                                    rows_json(rows, call->n_texts, call->n_images, dim), "dim", dim,
                                    "embedding_version", eng->version));
    free(call);
}

/* Moves the parsed inputs into a job: texts first, then images. */
static batch_job *embed_job_new(embed_request *r, embed_call *call) {
    batch_job *job = batch_job_new(r->n_texts + r->n_images, BATCH_BULK, embed_done, call);
    if (!job) return NULL;
    for (int i = 0; i < r->n_texts; i++) {
        job->inputs[i].text = r->texts[i];
        r->texts[i] = NULL;
    }
    for (int i = 0; i < r->n_images; i++) {
        job->inputs[r->n_texts + i].image = r->images[i].bytes;
        job->inputs[r->n_texts + i].image_len = r->images[i].len;
        r->images[i].bytes = NULL;
    }
    return job;
}

static void post_embed(http_request *req, void *ctx) {
    tailord *app = ctx;
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    embed_request parsed;
    request_error e;
    if (parse_embed_request(body, len, (int)app->cfg.embed_max_items, &parsed, &e)) {
        app_respond_parse_error(req, &e);
        return;
    }
    embed_call *call = malloc(sizeof *call);
    batch_job *job = call ? embed_job_new(&parsed, call) : NULL;
    if (call) *call = (embed_call){req, parsed.n_texts, parsed.n_images};
    embed_request_free(&parsed);
    if (!job) {
        free(call);
        http_respond_error(req, API_INTERNAL, "out of memory");
        return;
    }
    if (app_submit(app, req, job)) free(call);
}

static void post_task_unavailable(http_request *req, void *ctx) {
    http_respond_error(req, API_UNAVAILABLE, "the served model has no task heads in this build");
}

const http_route model_routes[] = {
    {HTTP_POST, "/v1/embed", post_embed, HTTP_ROUTE_JSON_BODY},
    {HTTP_POST, "/v1/classify", post_task_unavailable, HTTP_ROUTE_JSON_BODY},
    {HTTP_POST, "/v1/caption", post_task_unavailable, HTTP_ROUTE_JSON_BODY},
};
const int model_route_count = sizeof model_routes / sizeof model_routes[0];
