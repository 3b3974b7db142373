/* Admin endpoints behind an API key (Authorization: Bearer KEY, checked by the HTTP core in
 * constant time): PUT /v1/items/{id} (embed the image, store it, journal, make it
 * searchable), DELETE /v1/items/{id}, POST /v1/admin/reload (swap model and index). */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "image.h"

typedef struct item_call {
    http_request *req;
    int64_t id;
    item_request item; /* image bytes kept to be stored with the item */
    int deleting;
    size_t max_pixels;
} item_call;

static void item_call_free(item_call *call) {
    item_request_free(&call->item);
    free(call);
}

/* Decodes the item's image, embeds it in every space and stores the item. */
static tl_status store_item(engine *eng, item_call *call, tl_error *err) {
    int dim = search_service_dim(eng->search);
    float *embeddings = malloc(SPACE_COUNT * (size_t)dim * sizeof *embeddings);
    tl_image image = {0};
    img_decode_opts opts = {.max_pixels = call->max_pixels, .apply_exif = 1};
    tl_status st =
        embeddings ? img_decode(call->item.image.bytes, call->item.image.len, &opts, &image, err)
                   : tl_fail(err, TL_ERR_NOMEM, "embeddings");
    if (!st) st = search_service_embed_images(eng->model, &image, 1, embeddings, err);
    const float *rows[SPACE_COUNT];
    for (int g = 0; g < SPACE_COUNT; g++) rows[g] = embeddings + g * dim;
    catalogue_item item = {
        call->id, call->item.sku, call->item.title, call->item.category, call->item.subcategory,
        NULL};
    if (!st)
        st = search_service_upsert(eng->search, &item, call->item.image.bytes, call->item.image.len,
                                   rows, err);
    img_free(&image);
    free(embeddings);
    return st;
}

/* Runs on the batcher thread, which owns the model and serialises catalogue changes. */
static void item_done(batch_job *job, engine *eng, const float *rows, int dim, const tl_error *err,
                      void *ctx) {
    item_call *call = ctx;
    tl_error change_err = {0};
    if (!eng)
        http_respond_error(call->req, API_NOT_READY, "model and index are not loaded yet");
    else if (call->deleting ? search_service_remove(eng->search, call->id, &change_err)
                            : store_item(eng, call, &change_err))
        app_respond_batch_error(call->req, &change_err);
    else
        http_respond_json(call->req, 200,
                          json_pack("{s:I, s:s, s:I}", "id", (json_int_t)call->id, "status",
                                    call->deleting ? "deleted" : "stored", "items",
                                    (json_int_t)search_service_count(eng->search)));
    item_call_free(call);
}

/* Starts an item change: parses the id (and body), then queues the job. */
static void change_item(http_request *req, tailord *app, int deleting) {
    int64_t id = parse_item_id(http_request_param(req));
    if (id < 0) {
        http_respond_error(req, API_BAD_REQUEST, "an item id is a non-negative integer");
        return;
    }
    item_call *call = calloc(1, sizeof *call);
    if (!call) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        return;
    }
    *call = (item_call){.req = req,
                        .id = id,
                        .deleting = deleting,
                        .max_pixels = (size_t)app->cfg.image_max_pixels};
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    request_error e;
    if (!deleting && parse_item_request(body, len, &call->item, &e)) {
        app_respond_parse_error(req, &e);
        item_call_free(call);
        return;
    }
    batch_job *job = batch_job_new(0, BATCH_INTERACTIVE, item_done, call);
    if (!job) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        item_call_free(call);
        return;
    }
    if (app_submit(app, req, job)) item_call_free(call);
}

static void put_item(http_request *req, void *ctx) {
    change_item(req, ctx, 0);
}

static void delete_item(http_request *req, void *ctx) {
    change_item(req, ctx, 1);
}

static void post_reload(http_request *req, void *ctx) {
    tailord *app = ctx;
    if (app_require_empty_body(req)) return;
    int already = atomic_exchange(&app->reloading, 1);
    if (!already) app->request_reload(app);
    http_respond_json(req, 202,
                      json_pack("{s:s}", "status", already ? "already reloading" : "reloading"));
}

const http_route admin_routes[] = {
    {HTTP_PUT, "/v1/items/{}", put_item, HTTP_ROUTE_JSON_BODY | HTTP_ROUTE_ADMIN},
    {HTTP_DELETE, "/v1/items/{}", delete_item, HTTP_ROUTE_ADMIN},
    {HTTP_POST, "/v1/admin/reload", post_reload, HTTP_ROUTE_ADMIN},
};
const int admin_route_count = sizeof admin_routes / sizeof admin_routes[0];
