/* Direct model endpoints: POST /v1/embed (bulk: texts and images to L2-normalised
 * embeddings), POST /v1/classify (sub-category head, or zero-shot over given labels) and
 * POST /v1/caption (FAME-ViL's captioning head; 501 for checkpoints without it). */
#include <stdlib.h>

#include "image.h"

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

/* ---- classify and caption: one image each, run on the batcher thread ---- */

typedef struct task_call {
    http_request *req;
    size_t max_pixels;
    classify_request classify;
    caption_request caption;
} task_call;

static void task_call_free(task_call *call) {
    classify_request_free(&call->classify);
    caption_request_free(&call->caption);
    free(call);
}

typedef struct scored_label {
    const char *label;
    float probability;
} scored_label;

static int by_probability_desc(const void *a, const void *b) {
    float x = ((const scored_label *)a)->probability, y = ((const scored_label *)b)->probability;
    return (x < y) - (x > y);
}

/* {"predictions": [{"label", "probability"}...]} most probable first. */
static json_t *predictions_json(const char *const *labels, const float *probs, int n) {
    scored_label *sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) return NULL;
    for (int i = 0; i < n; i++) sorted[i] = (scored_label){labels[i], probs[i]};
    qsort(sorted, (size_t)n, sizeof *sorted, by_probability_desc);
    json_t *list = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:f}", "label", sorted[i].label, "probability",
                                              (double)sorted[i].probability));
    free(sorted);
    return json_pack("{s:o}", "predictions", list);
}

static tl_status run_classify(engine *eng, task_call *call, const tl_image *image, json_t **out,
                              tl_error *err) {
    const classify_request *r = &call->classify;
    const char *const *labels = (const char *const *)r->labels;
    int n = r->n_labels;
    if (!labels) n = tl_scr_labels(eng->model, &labels);
    if (n <= 0)
        return tl_fail(err, TL_ERR_UNAVAILABLE,
                       "the model has no classification head; give 'labels'");
    float *probs = malloc((size_t)n * sizeof *probs);
    if (!probs) return tl_fail(err, TL_ERR_NOMEM, "probabilities");
    tl_status st = tl_classify(eng->model, image, r->text ? r->text : "", r->labels ? labels : NULL,
                               n, probs, err);
    if (!st && !(*out = predictions_json(labels, probs, n)))
        st = tl_fail(err, TL_ERR_NOMEM, "answer");
    free(probs);
    return st;
}

static tl_status run_caption(engine *eng, task_call *call, const tl_image *image, json_t **out,
                             tl_error *err) {
    int cap = tl_model_get_info(eng->model)->context_length;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    char text[2048];
    int n_ids = 0;
    if (!ids) return tl_fail(err, TL_ERR_NOMEM, "caption");
    tl_caption_opts opts = {call->caption.beam, call->caption.max_tokens};
    tl_status st = tl_caption(eng->model, image, &opts, ids, cap, &n_ids, text, sizeof text, err);
    if (!st) {
        json_t *id_list = json_array();
        for (int i = 0; i < n_ids; i++) json_array_append_new(id_list, json_integer(ids[i]));
        *out = json_pack("{s:s, s:o}", "caption", text, "token_ids", id_list);
        if (!*out) st = tl_fail(err, TL_ERR_NOMEM, "answer");
    }
    free(ids);
    return st;
}

/* Decodes the image, runs the task, answers. */
static void task_done(batch_job *job, engine *eng, const float *rows, int dim, const tl_error *err,
                      void *ctx) {
    task_call *call = ctx;
    int classify = call->classify.image.bytes != NULL;
    const decoded_image *bytes = classify ? &call->classify.image : &call->caption.image;
    tl_image image = {0};
    img_decode_opts opts = {.max_pixels = call->max_pixels, .apply_exif = 1};
    tl_error task_err = {0};
    json_t *answer = NULL;
    if (!eng)
        http_respond_error(call->req, API_NOT_READY, "model and index are not loaded yet");
    else if (img_decode(bytes->bytes, bytes->len, &opts, &image, &task_err) ||
             (classify ? run_classify(eng, call, &image, &answer, &task_err)
                       : run_caption(eng, call, &image, &answer, &task_err)))
        app_respond_batch_error(call->req, &task_err);
    else
        http_respond_json(call->req, 200, answer);
    img_free(&image);
    task_call_free(call);
}

/* Parses a classify or caption body and queues it as a job without batch inputs. */
static void post_task(http_request *req, tailord *app, int classify) {
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    task_call *call = calloc(1, sizeof *call);
    request_error e;
    if (!call) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        return;
    }
    call->req = req;
    call->max_pixels = (size_t)app->cfg.image_max_pixels;
    if (classify ? parse_classify_request(body, len, &call->classify, &e)
                 : parse_caption_request(body, len, &call->caption, &e)) {
        app_respond_parse_error(req, &e);
        task_call_free(call);
        return;
    }
    batch_job *job = batch_job_new(0, BATCH_INTERACTIVE, task_done, call);
    if (!job) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        task_call_free(call);
        return;
    }
    if (app_submit(app, req, job)) task_call_free(call);
}

static void post_classify(http_request *req, void *ctx) {
    post_task(req, ctx, 1);
}

static void post_caption(http_request *req, void *ctx) {
    post_task(req, ctx, 0);
}

const http_route model_routes[] = {
    {HTTP_POST, "/v1/embed", post_embed, HTTP_ROUTE_JSON_BODY},
    {HTTP_POST, "/v1/classify", post_classify, HTTP_ROUTE_JSON_BODY},
    {HTTP_POST, "/v1/caption", post_caption, HTTP_ROUTE_JSON_BODY},
};
const int model_route_count = sizeof model_routes / sizeof model_routes[0];
