/* tailord's HTTP core over libmicrohttpd: one internal polling thread, a static route table,
 * request ids, body limits (413 before reading more), URL limits, JSON error bodies, and
 * suspend/resume so handlers hand slow work to other threads and never block.
 * Not for: what a route does (routes_*.c) or JSON request schemas (request_body.h). */
#ifndef TAILORD_HTTP_H
#define TAILORD_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

typedef struct http_server http_server;
typedef struct http_request http_request;

typedef enum http_method { HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_OTHER } http_method;

/* A handler answers with one http_respond_* call, now or (after http_suspend) later from any
 * thread. app is the pointer given to http_server_start. */
typedef void (*http_handler)(http_request *req, void *app);

enum {
    HTTP_ROUTE_JSON_BODY = 1, /* reads a JSON body (Content-Type application/json) */
    HTTP_ROUTE_ADMIN = 2,     /* needs Authorization: Bearer <api key> */
};

typedef struct http_route {
    http_method method;
    const char *pattern; /* "/v1/sessions/{}/turns": {} matches one non-empty segment */
    http_handler handler;
    int flags;
} http_route;

typedef struct http_limits {
    size_t body_bytes, url_bytes;
    unsigned connections, timeout_s;
} http_limits;

/* Called once per finished request (from the HTTP thread) for metrics. route_index is the
 * position in the route table, or -1 when no route matched. */
typedef void (*http_observer)(void *app, int route_index, unsigned status, double seconds);

/* Starts listening on ip:port (port 0 = any) with the route table routes[0..n_routes).
 * api_keys[n_api_keys] guard admin routes. Returns NULL with a message in msg on failure. */
http_server *http_server_start(const char *ip, unsigned port, const http_route *routes,
                               int n_routes, const http_limits *limits, char *const *api_keys,
                               int n_api_keys, void *app, http_observer observer, char *msg,
                               size_t msg_size);
/* The port actually bound. */
unsigned http_server_port(const http_server *s);
/* Stops accepting connections; requests in flight continue. */
void http_server_quiesce(http_server *s);
/* Requests accepted and not yet completed. */
int http_server_in_flight(const http_server *s);
/* Stops the server; call only when no request is suspended (in flight is 0). */
void http_server_stop(http_server *s);

/* Request accessors; returned strings are owned by req and live until its completion. */
const char *http_request_id(const http_request *req);
const char *http_request_param(const http_request *req); /* the {} segment, or NULL */
const char *http_request_header(const http_request *req, const char *name);
const char *http_request_query(const http_request *req, const char *key);
const uint8_t *http_request_body(const http_request *req, size_t *len);

/* Attaches state freed (by free_fn) when the request completes, whatever happened to it. */
void http_request_attach(http_request *req, void *state, void (*free_fn)(void *));

/* Marks the request as answered later; the handler must call this before handing req to
 * another thread, and that thread then answers with http_respond_*. */
void http_suspend(http_request *req);

/* Answers with status and a JSON body (reference stolen). Callable from any thread once. */
void http_respond_json(http_request *req, unsigned status, json_t *body);
/* Answers {"error": {"code", "message", "request_id"}} with e's status; overload errors add
 * Retry-After. */
void http_respond_error(http_request *req, api_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Answers with bytes (copied) of content_type. */
void http_respond_bytes(http_request *req, unsigned status, const char *content_type,
                        const void *data, size_t len);
/* Answers with size bytes of the open file fd (taken over and closed by the server). */
void http_respond_fd(http_request *req, const char *content_type, int fd, size_t size);

#endif
