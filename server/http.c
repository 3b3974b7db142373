/* libmicrohttpd glue for http.h. Every request gets one http_request, created in the URI
 * callback and freed in the completion callback (the one place per-request state dies). The
 * access handler walks it through: checks (URL, route, auth, length) → body → handler →
 * (suspended) → queue the response. */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define REQUEST_ID_MAX 64

struct http_server {
    struct MHD_Daemon *daemon;
    const http_route *routes;
    int n_routes;
    http_limits limits;
    char *const *api_keys;
    int n_api_keys;
    void *app;
    http_observer observer;
    atomic_int in_flight;
    atomic_uint_fast64_t next_id;
    unsigned id_salt;
};

typedef enum request_stage { STAGE_NEW, STAGE_BODY, STAGE_DISPATCHED } request_stage;

struct http_request {
    http_server *server;
    struct MHD_Connection *conn;
    request_stage stage;
    int url_too_long;
    int route_index;
    http_method method;
    char id[REQUEST_ID_MAX + 1];
    char *param;
    char *path;
    uint8_t *body;
    size_t body_len, body_cap;
    size_t dropped; /* body bytes read and thrown away after the answer was set */
    struct timespec start;
    _Atomic(struct MHD_Response *) response;
    unsigned status;
    int suspended;
    void *state;
    void (*free_state)(void *);
};

static double seconds_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + 1e-9 * (double)(now.tv_nsec - t0->tv_nsec);
}

static http_method method_from_name(const char *m) {
    static const char *const names[] = {"GET", "POST", "PUT", "DELETE"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(m, names[i])) return (http_method)i;
    return HTTP_OTHER;
}

/* A client id is kept when it is 1..64 characters of [A-Za-z0-9._-]; otherwise one is made. */
static void assign_request_id(http_request *req) {
    const char *given = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t len = given ? strlen(given) : 0;
    if (len && len <= REQUEST_ID_MAX &&
        strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len) {
        memcpy(req->id, given, len + 1);
        return;
    }
    uint64_t n = atomic_fetch_add(&req->server->next_id, 1);
    snprintf(req->id, sizeof req->id, "%08x%08llx", req->server->id_salt, (unsigned long long)n);
}

/* ---- responses ---- */

static void respond_with(http_request *req, unsigned status, struct MHD_Response *resp,
                         const char *content_type) {
    if (!resp) {
        log_event(LOG_ERROR, "http", NULL, "could not create a response for %s", req->id);
        resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        status = 500;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, "X-Request-Id", req->id);
    req->status = status;
    struct MHD_Response *none = NULL;
    if (!atomic_compare_exchange_strong(&req->response, &none, resp)) {
        MHD_destroy_response(resp); /* answered twice: keep the first */
        return;
    }
    if (req->suspended) {
        req->suspended = 0;
        MHD_resume_connection(req->conn);
    }
}

void http_respond_bytes(http_request *req, unsigned status, const char *content_type,
                        const void *data, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    respond_with(req, status, resp, content_type);
}

void http_respond_fd(http_request *req, const char *content_type, int fd, size_t size) {
    struct MHD_Response *resp = MHD_create_response_from_fd(size, fd);
    if (!resp)
        close(fd);
    else
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=3600");
    respond_with(req, 200, resp, content_type);
}

void http_respond_json(http_request *req, unsigned status, json_t *body) {
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        http_respond_error(req, API_INTERNAL, "could not encode the response");
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) free(text);
    respond_with(req, status, resp, "application/json");
}

void http_respond_error(http_request *req, api_error e, const char *fmt, ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *error = json_pack("{s:s, s:s, s:s}", "code", api_error_code(e), "message", message,
                              "request_id", req->id);
    if (!error) /* message was not UTF-8 (it quoted client bytes) */
        error = json_pack("{s:s, s:s, s:s}", "code", api_error_code(e), "message",
                          "invalid request", "request_id", req->id);
    json_t *body = json_pack("{s:o}", "error", error);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    struct MHD_Response *resp =
        text ? MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE) : NULL;
    if (!resp) free(text);
    if (resp && (e == API_OVERLOADED || e == API_RATE_LIMITED || e == API_NOT_READY ||
                 e == API_SHUTTING_DOWN))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (resp && e == API_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    respond_with(req, api_error_http_status(e), resp, "application/json");
}

/* ---- request accessors ---- */

const char *http_request_id(const http_request *req) {
    return req->id;
}

const char *http_request_param(const http_request *req) {
    return req->param;
}

const char *http_request_header(const http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_request_query(const http_request *req, const char *key) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const uint8_t *http_request_body(const http_request *req, size_t *len) {
    *len = req->body_len;
    return req->body ? req->body : (const uint8_t *)"";
}

void http_request_attach(http_request *req, void *state, void (*free_fn)(void *)) {
    req->state = state;
    req->free_state = free_fn;
}

void http_suspend(http_request *req) {
    req->suspended = 1;
    MHD_suspend_connection(req->conn);
}

/* ---- routing ---- */

/* Matches path against pattern segment by segment; a {} segment is captured into *param. */
static int route_matches(const char *pattern, const char *path, char **param) {
    const char *p = pattern, *u = path;
    const char *captured = NULL;
    size_t captured_len = 0;
    while (*p && *u) {
        if (p[0] == '{' && p[1] == '}') {
            size_t len = strcspn(u, "/");
            if (!len) return 0;
            captured = u;
            captured_len = len;
            u += len;
            p += 2;
        } else if (*p++ != *u++)
            return 0;
    }
    if (*p || *u) return 0;
    if (captured && param) *param = strndup(captured, captured_len);
    return 1;
}

/* Finds the route for method and path; *path_known says whether any method matched. */
static int route_find(const http_server *s, http_method method, const char *path, int *path_known) {
    *path_known = 0;
    for (int i = 0; i < s->n_routes; i++) {
        if (!route_matches(s->routes[i].pattern, path, NULL)) continue;
        *path_known = 1;
        if (s->routes[i].method == method) return i;
    }
    return -1;
}

/* Constant-time comparison of the bearer token with every key. */
static int authorized(const http_server *s, const char *header) {
    if (!header || strncmp(header, "Bearer ", 7)) return 0;
    const char *token = header + 7;
    size_t len = strlen(token);
    int ok = 0;
    for (int k = 0; k < s->n_api_keys; k++) {
        const char *key = s->api_keys[k];
        size_t key_len = strlen(key);
        unsigned char diff = (unsigned char)(len != key_len);
        for (size_t i = 0; i < key_len; i++)
            diff |= (unsigned char)(key[i] ^ (i < len ? token[i] : 0));
        ok |= !diff && key_len > 0;
    }
    return ok;
}

/* The checks made before any body byte is read. Returns 0 to go on, or answers with an error
 * and returns -1. */
static int check_request_head(http_request *req, const char *method, const char *url) {
    http_server *s = req->server;
    if (req->url_too_long) {
        http_respond_error(req, API_URI_TOO_LONG, "the URL is longer than %zu bytes",
                           s->limits.url_bytes);
        return -1;
    }
    req->method = method_from_name(method);
    int path_known;
    req->route_index = route_find(s, req->method, url, &path_known);
    if (req->route_index < 0) {
        if (path_known)
            http_respond_error(req, API_METHOD_NOT_ALLOWED, "method %s not allowed here", method);
        else
            http_respond_error(req, API_NOT_FOUND, "no such endpoint");
        return -1;
    }
    const http_route *route = &s->routes[req->route_index];
    route_matches(route->pattern, url, &req->param);
    if ((route->flags & HTTP_ROUTE_ADMIN) &&
        !authorized(s, http_request_header(req, MHD_HTTP_HEADER_AUTHORIZATION))) {
        http_respond_error(req, API_UNAUTHORIZED,
                           "a valid API key is needed (Authorization: Bearer KEY)");
        return -1;
    }
    const char *length = http_request_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull(length, NULL, 10) > s->limits.body_bytes) {
        http_respond_error(req, API_BODY_TOO_LARGE, "the body is larger than %zu bytes",
                           s->limits.body_bytes);
        return -1;
    }
    const char *type = http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if ((route->flags & HTTP_ROUTE_JSON_BODY) &&
        (!type || strncasecmp(type, "application/json", 16))) {
        http_respond_error(req, API_UNSUPPORTED_MEDIA, "the body must be application/json");
        return -1;
    }
    return 0;
}

/* A body without Content-Length (chunked) that passes the limit cannot be answered at once:
 * libmicrohttpd queues a response only before the body or after all of it. So the rest is read
 * and dropped, and the 413 goes out when the body ends; past this many times the limit the
 * connection is cut instead. */
enum { DROP_LIMIT_FACTOR = 4 };

/* Appends one chunk of body, or sets the answer (413, or 500 when out of memory); an answer set
 * here is queued when the body ends (on_access). */
static void append_body(http_request *req, const char *data, size_t len) {
    size_t limit = req->server->limits.body_bytes;
    if (req->body_len + len > limit) {
        http_respond_error(req, API_BODY_TOO_LARGE, "the body is larger than %zu bytes", limit);
        return;
    }
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + len + 1) cap *= 2;
        uint8_t *grown = realloc(req->body, cap);
        if (!grown) {
            http_respond_error(req, API_INTERNAL, "out of memory reading the body");
            return;
        }
        req->body = grown;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    req->body[req->body_len] = 0;
}

/* ---- libmicrohttpd callbacks ---- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn) {
    http_server *s = cls;
    http_request *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    req->server = s;
    req->conn = conn;
    req->route_index = -1;
    req->url_too_long = strlen(uri) > s->limits.url_bytes;
    size_t path_len = strcspn(uri, "?");
    req->path = strndup(uri, path_len < 256 ? path_len : 256);
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    atomic_fetch_add(&s->in_flight, 1);
    return req;
}

static enum MHD_Result queue_pending(http_request *req) {
    struct MHD_Response *resp = atomic_load(&req->response);
    enum MHD_Result rc = MHD_queue_response(req->conn, req->status, resp);
    return rc;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls) {
    http_request *req = *req_cls;
    if (!req) return MHD_NO;
    if (req->stage == STAGE_NEW) {
        req->stage = STAGE_BODY;
        assign_request_id(req);
        if (check_request_head(req, method, url)) return queue_pending(req);
        return MHD_YES;
    }
    if (req->stage == STAGE_BODY && *upload_data_size) {
        size_t len = *upload_data_size;
        *upload_data_size = 0;
        if (atomic_load(&req->response)) { /* refused mid-body: answered when the body ends */
            req->dropped += len;
            return req->dropped > DROP_LIMIT_FACTOR * req->server->limits.body_bytes ? MHD_NO
                                                                                      : MHD_YES;
        }
        append_body(req, upload_data, len);
        return MHD_YES;
    }
    if (req->stage == STAGE_BODY) {
        req->stage = STAGE_DISPATCHED;
        if (!atomic_load(&req->response))
            req->server->routes[req->route_index].handler(req, req->server->app);
    }
    if (!atomic_load(&req->response)) return MHD_YES; /* suspended; resumed with an answer */
    return queue_pending(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe) {
    http_server *s = cls;
    http_request *req = *req_cls;
    if (!req) return;
    double seconds = seconds_since(&req->start);
    unsigned status = atomic_load(&req->response) ? req->status : 499;
    if (s->observer) s->observer(s->app, req->route_index, status, seconds);
    const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "OTHER"};
    json_t *line = json_pack("{s:s, s:s, s:s?, s:i, s:f, s:I}", "request_id", req->id, "method",
                             methods[req->method], "path", req->path, "status", (int)status,
                             "duration_ms", seconds * 1e3, "body_bytes", (json_int_t)req->body_len);
    if (line) log_access(line);
    if (req->free_state) req->free_state(req->state);
    struct MHD_Response *resp = atomic_load(&req->response);
    if (resp) MHD_destroy_response(resp);
    free(req->param);
    free(req->path);
    free(req->body);
    free(req);
    *req_cls = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    log_event(LOG_DEBUG, "mhd", NULL, "%s", msg);
}

/* ---- server life ---- */

http_server *http_server_start(const char *ip, unsigned port, const http_route *routes,
                               int n_routes, const http_limits *limits, char *const *api_keys,
                               int n_api_keys, void *app, http_observer observer, char *msg,
                               size_t msg_size) {
    struct sockaddr_storage addr = {0};
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(msg, msg_size, "'%s' is not an IP address", ip);
        return NULL;
    }
    http_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    *s = (http_server){.routes = routes,
                       .n_routes = n_routes,
                       .limits = *limits,
                       .api_keys = api_keys,
                       .n_api_keys = n_api_keys,
                       .app = app,
                       .observer = observer,
                       .id_salt = (unsigned)getpid() ^ (unsigned)time(NULL)};
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_LIMIT, limits->connections, MHD_OPTION_CONNECTION_TIMEOUT,
        limits->timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(msg, msg_size, "cannot listen on %s:%u", ip, port);
        free(s);
        return NULL;
    }
    return s;
}

unsigned http_server_port(const http_server *s) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

void http_server_quiesce(http_server *s) {
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

int http_server_in_flight(const http_server *s) {
    return atomic_load(&s->in_flight);
}

void http_server_stop(http_server *s) {
    if (!s) return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
