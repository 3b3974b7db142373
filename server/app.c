/* The shared route helpers of app.h. */
#include "app.h"

void app_respond_parse_error(http_request *req, const request_error *e) {
    http_respond_error(req, e->code, "%s", e->message);
}

int app_require_empty_body(http_request *req) {
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    request_error e;
    if (!parse_empty_request(body, len, &e)) return 0;
    app_respond_parse_error(req, &e);
    return -1;
}

int app_submit(tailord *app, http_request *req, batch_job *job) {
    http_suspend(req);
    if (batcher_submit(app->batcher, job) == 0) return 0;
    batch_priority priority = job->priority;
    batch_job_free(job);
    if (atomic_load(&app->draining))
        http_respond_error(req, API_SHUTTING_DOWN, "the server is shutting down");
    else if (priority == BATCH_BULK)
        http_respond_error(req, API_RATE_LIMITED, "the bulk queue is full; retry later");
    else
        http_respond_error(req, API_OVERLOADED, "the queue is full; retry later");
    return -1;
}

void app_respond_batch_error(http_request *req, const tl_error *err) {
    http_respond_error(req, api_error_from_status(err->code), "%s", err->message);
}

int app_reference_image(tailord *app, http_request *req, const search_request *q, char **path) {
    *path = NULL;
    if (q->item_id < 0 || !q->text) return 0;
    engine *eng = engine_acquire(app->engines);
    if (eng) *path = search_service_image_path(eng->search, q->item_id);
    engine_release(app->engines, eng);
    if (*path) return 0;
    if (!eng)
        http_respond_error(req, API_NOT_READY, "model and index are not loaded yet");
    else
        http_respond_error(req, API_ITEM_NOT_FOUND, "no item %lld", (long long)q->item_id);
    return -1;
}
