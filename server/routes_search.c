/* POST /v1/search: a text, an image, a catalogue item, or an image or item refined by text;
 * filtered by category/subcategory; paged by limit/offset. Embedding and ranking run on the
 * batcher thread; the connection waits suspended. */
#include <stdlib.h>

#include "app.h"
#include "query.h"

typedef struct search_call {
    tailord *app;
    http_request *req;
    search_request query; /* filter and paging (text and image moved into the job) */
    query_plan plan;
} search_call;

static void search_call_free(search_call *call) {
    search_request_free(&call->query);
    free(call);
}

/* Ranks the catalogue for call's query and answers; runs on the batcher thread. */
static void search_done(batch_job *job, engine *eng, const float *rows, int dim,
                        const tl_error *err, void *ctx) {
    search_call *call = ctx;
    http_request *req = call->req;
    float *query = eng ? malloc((size_t)dim * sizeof *query) : NULL;
    tl_error compose_err = {0};
    if (!eng)
        http_respond_error(req, API_NOT_READY, "model and index are not loaded yet");
    else if (err->code)
        app_respond_batch_error(req, err);
    else if (!query)
        http_respond_error(req, API_INTERNAL, "out of memory");
    else if (query_embedding(eng, &call->plan, rows, query, &compose_err))
        app_respond_batch_error(req, &compose_err);
    else {
        search_filter filter = {call->query.category, call->query.subcategory, call->plan.item_id};
        json_t *results =
            search_service_search(eng->search, call->plan.space, query, &filter, call->query.limit,
                                  call->query.offset, eng->version);
        http_respond_json(req, 200,
                          json_pack("{s:o, s:s, s:s, s:i, s:i}", "results", results, "mode",
                                    call->plan.mode, "embedding_version", eng->version, "limit",
                                    call->query.limit, "offset", call->query.offset));
    }
    free(query);
    search_call_free(call);
}

static void post_search(http_request *req, void *ctx) {
    tailord *app = ctx;
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    search_call *call = calloc(1, sizeof *call);
    request_error e;
    if (!call) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        return;
    }
    call->app = app;
    call->req = req;
    if (parse_search_request(body, len, &call->query, &e)) {
        app_respond_parse_error(req, &e);
        search_call_free(call);
        return;
    }
    char *reference = NULL;
    if (app_reference_image(app, req, &call->query, &reference)) {
        search_call_free(call);
        return;
    }
    batch_job *job = query_job_new(&call->query, reference, &call->plan, search_done, call);
    free(reference);
    if (!job) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        search_call_free(call);
        return;
    }
    if (app_submit(app, req, job)) search_call_free(call);
}

const http_route search_routes[] = {
    {HTTP_POST, "/v1/search", post_search, HTTP_ROUTE_JSON_BODY},
};
const int search_route_count = sizeof search_routes / sizeof search_routes[0];
