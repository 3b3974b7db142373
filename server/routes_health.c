/* GET /healthz (the process answers), /readyz (model and index loaded, not draining),
 * /metrics (Prometheus) and /v1/info (versions, model, index, options). */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "app.h"
#include "metrics.h"

static void get_healthz(http_request *req, void *ctx) {
    http_respond_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void get_readyz(http_request *req, void *ctx) {
    tailord *app = ctx;
    if (atomic_load(&app->draining)) {
        http_respond_error(req, API_SHUTTING_DOWN, "the server is draining");
        return;
    }
    engine *eng = engine_acquire(app->engines);
    if (!eng) {
        http_respond_error(req, API_NOT_READY, "model and index are not loaded yet");
        return;
    }
    http_respond_json(
        req, 200, json_pack("{s:s, s:s}", "status", "ready", "embedding_version", eng->version));
    engine_release(app->engines, eng);
}

static void get_metrics(http_request *req, void *ctx) {
    tailord *app = ctx;
    metrics_gauges g = {.queue_depth = batcher_queue_depth(app->batcher),
                        .in_flight = http_server_in_flight(app->http)};
    size_t session_bytes;
    session_store_stats(app->sessions, &g.sessions, &session_bytes);
    g.session_bytes = (long)session_bytes;
    engine *eng = engine_acquire(app->engines);
    g.ready = eng && !atomic_load(&app->draining);
    g.catalogue_items = eng ? (long)search_service_count(eng->search) : 0;
    engine_release(app->engines, eng);
    char *text = metrics_render(&g);
    if (!text) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        return;
    }
    http_respond_bytes(req, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
}

/* The engine's load-time details with the index manifest as it is now (admin changes). */
static json_t *engine_json(engine *eng) {
    json_t *out = json_copy(eng->info);
    if (out) json_object_set_new(out, "index", search_service_manifest(eng->search));
    return out;
}

/* The versions of tailord and of the libraries it runs on. */
static json_t *versions_json(void) {
    return json_pack("{s:s, s:s, s:s, s:s}", "tailord", TAILOR_VERSION, "libmicrohttpd",
                     MHD_get_version(), "libuv", uv_version_string(), "jansson", JANSSON_VERSION);
}

static void get_info(http_request *req, void *ctx) {
    tailord *app = ctx;
    engine *eng = engine_acquire(app->engines);
    json_t *info =
        json_pack("{s:s, s:s, s:o, s:I, s:o?, s:o}", "name", "tailord", "version", TAILOR_VERSION,
                  "versions", versions_json(), "started_at", (json_int_t)app->started_at, "engine",
                  eng ? engine_json(eng) : NULL, "config", config_to_json(&app->cfg));
    engine_release(app->engines, eng);
    http_respond_json(req, 200, info);
}

const http_route health_routes[] = {
    {HTTP_GET, "/healthz", get_healthz, 0},
    {HTTP_GET, "/readyz", get_readyz, 0},
    {HTTP_GET, "/metrics", get_metrics, 0},
    {HTTP_GET, "/v1/info", get_info, 0},
};
const int health_route_count = sizeof health_routes / sizeof health_routes[0];
