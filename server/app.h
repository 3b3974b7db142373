/* The state every route shares (configuration, served engine, batcher, sessions, HTTP
 * server, lifecycle flags), the route tables of each endpoint family, and the helpers routes
 * use to answer parse errors and to hand work to the batcher. Not for: the event loop
 * (loop.c) or the HTTP mechanics (http.h). */
#ifndef TAILORD_APP_H
#define TAILORD_APP_H

#include <stdatomic.h>
#include <time.h>

#include "batcher.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "request_body.h"
#include "session_store.h"

typedef struct tailord {
    tailord_config cfg;
    engine_slot *engines;
    batcher *batcher;
    session_store *sessions;
    http_server *http;
    atomic_int draining;
    atomic_int reloading;
    void (*request_reload)(struct tailord *app); /* wakes the event loop; any thread */
    time_t started_at;
} tailord;

/* Route tables, one per endpoint family (routes_*.c). */
extern const http_route health_routes[], search_routes[], session_routes[], model_routes[],
    admin_routes[], static_routes[];
extern const int health_route_count, search_route_count, session_route_count, model_route_count,
    admin_route_count, static_route_count;

/* Answers a request_body parse error. */
void app_respond_parse_error(http_request *req, const request_error *e);
/* For routes that take no fields: 0 when the body is empty or {}, else answers 400 and
 * returns -1. */
int app_require_empty_body(http_request *req);

/* Suspends req and queues job; when the queue is full answers 503 (interactive) or 429
 * (bulk) and frees job, but not job->ctx, which stays the caller's. Returns 0 when queued. */
int app_submit(tailord *app, http_request *req, batch_job *job);

/* When q refines a catalogue item by text, sets *path to the item's image file (caller
 * frees); else *path = NULL. Returns -1 after answering 404 (unknown item) or 503. */
int app_reference_image(tailord *app, http_request *req, const search_request *q, char **path);

/* Answers a failed batch: maps the library status to an API error. */
void app_respond_batch_error(http_request *req, const tl_error *err);

#endif
