/* tailord: the retrieval daemon. Reads the configuration, restores sessions, starts the
 * batcher and the HTTP server, runs the event loop until a drain, then saves sessions and
 * releases everything. All request handling lives in routes_*.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"

extern char **environ;

#define MAX_ROUTES METRICS_MAX_ROUTES

static http_route routes[MAX_ROUTES];
static char route_labels[MAX_ROUTES][64];
static const char *route_label_ptrs[MAX_ROUTES];

/* Concatenates the endpoint families into one table and names each route for metrics. */
static int build_route_table(void) {
    const http_route *families[] = {health_routes, search_routes, session_routes,
                                    model_routes,  admin_routes,  static_routes};
    const int counts[] = {health_route_count, search_route_count, session_route_count,
                          model_route_count,  admin_route_count,  static_route_count};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "OTHER"};
    int n = 0;
    for (size_t f = 0; f < sizeof counts / sizeof counts[0]; f++)
        for (int i = 0; i < counts[f] && n < MAX_ROUTES; i++, n++) {
            routes[n] = families[f][i];
            snprintf(route_labels[n], sizeof route_labels[n], "%s %s", methods[routes[n].method],
                     routes[n].pattern);
            route_label_ptrs[n] = route_labels[n];
        }
    metrics_init(route_label_ptrs, n);
    return n;
}

static void observe_request(void *app, int route_index, unsigned status, double seconds) {
    metrics_observe_request(route_index, status, seconds);
}

static void usage(FILE *out) {
    fprintf(out, "usage: tailord [--config FILE] [--OPTION VALUE ...]\n\n"
                 "Serves Tailor's retrieval API (see proto/openapi.yaml) and the demo shop.\n"
                 "SIGTERM drains requests in flight and exits; SIGHUP reloads model and index.\n\n"
                 "  --help     this text\n  --version  print the version\n"
                 "  --config   JSON file of options (keys as below; groups may nest)\n\n");
    config_print_help(out);
}

/* sessions.persist applies to the in-process store; Redis keeps its own. */
static int persist_sessions(const tailord *app) {
    return *app->cfg.sessions_persist && !*app->cfg.redis_url;
}

static void restore_sessions(tailord *app) {
    if (!persist_sessions(app)) return;
    long n = 0;
    tl_error err = {0};
    if (session_store_load(app->sessions, app->cfg.sessions_persist, &n, &err))
        log_event(LOG_WARN, "sessions", NULL, "snapshot not restored: %s", err.message);
    else
        log_event(LOG_INFO, "sessions", NULL, "%ld sessions restored from %s", n,
                  app->cfg.sessions_persist);
}

static void save_sessions(tailord *app) {
    if (!persist_sessions(app) || !app->sessions) return;
    tl_error err = {0};
    if (session_store_save(app->sessions, app->cfg.sessions_persist, &err))
        log_event(LOG_ERROR, "sessions", NULL, "snapshot not written: %s", err.message);
    else
        log_event(LOG_INFO, "sessions", NULL, "sessions saved to %s", app->cfg.sessions_persist);
}

/* The session store: Redis when redis_url is set, else in process; 0 on success. */
static int open_sessions(tailord *app) {
    const tailord_config *c = &app->cfg;
    tl_error err = {0};
    if (*c->redis_url) {
        if (!session_store_open_redis(&app->sessions, c->redis_url, (long)c->sessions_ttl_s, &err))
            return 0;
        log_event(LOG_ERROR, "start", NULL, "sessions: %s", err.message);
        return -1;
    }
    app->sessions = session_store_create((long)c->sessions_max_count, (size_t)c->sessions_max_bytes,
                                         (long)c->sessions_ttl_s);
    if (app->sessions) return 0;
    log_event(LOG_ERROR, "start", NULL, "out of memory");
    return -1;
}

/* Creates the stores, the batcher and the HTTP server; 0 on success. */
static int start_services(tailord *app, int n_routes) {
    const tailord_config *c = &app->cfg;
    char msg[256];
    app->engines = engine_slot_create();
    if (open_sessions(app)) return -1;
    batcher_opts bo = {c->batch_window_ms, (int)c->batch_max, (long)c->queue_max,
                       (long)c->queue_bulk_max, (size_t)c->image_max_pixels};
    app->batcher = app->engines ? batcher_start(app->engines, &bo) : NULL;
    if (!app->engines || !app->batcher) {
        log_event(LOG_ERROR, "start", NULL, "out of memory");
        return -1;
    }
    restore_sessions(app);
    http_limits limits = {(size_t)c->body_limit, (size_t)c->url_limit,
                          (unsigned)c->http_connections, (unsigned)c->http_timeout_s};
    app->http = http_server_start(c->listen, (unsigned)c->port, routes, n_routes, &limits,
                                  c->api_keys.items, c->api_keys.count, app, observe_request, msg,
                                  sizeof msg);
    if (!app->http) {
        log_event(LOG_ERROR, "start", NULL, "%s", msg);
        return -1;
    }
    log_event(
        LOG_INFO, "listening",
        json_pack("{s:s, s:i}", "address", c->listen, "port", (int)http_server_port(app->http)),
        "tailord %s listening on %s:%u", TAILOR_VERSION, c->listen, http_server_port(app->http));
    return 0;
}

static void stop_services(tailord *app) {
    batcher_free(app->batcher);
    http_server_stop(app->http);
    save_sessions(app);
    session_store_free(app->sessions);
    engine_slot_free(app->engines);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("tailord %s\n", TAILOR_VERSION);
            return 0;
        }
    }
    static tailord app;
    char msg[512];
    if (config_load(&app.cfg, argc, argv, environ, msg, sizeof msg)) {
        fprintf(stderr, "tailord: %s\n", msg);
        config_free(&app.cfg);
        return 2;
    }
    log_set_level_name(app.cfg.log_level);
    if (!*app.cfg.model_dir || !*app.cfg.index_dir) {
        fprintf(stderr, "tailord: model_dir and index_dir are required (see --help)\n");
        config_free(&app.cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    app.started_at = time(NULL);
    int n_routes = build_route_table();
    int rc = start_services(&app, n_routes) ? 1 : loop_run(&app);
    stop_services(&app);
    config_free(&app.cfg);
    log_event(LOG_INFO, "exit", NULL, "tailord stopped");
    return rc;
}
