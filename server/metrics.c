/* Counters and histograms of metrics.h, rendered in the Prometheus text format 0.0.4. */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const unsigned statuses[] = {200, 201, 204, 400, 401, 404, 405, 413, 414,
                                    415, 422, 429, 499, 500, 501, 503, 0 /* other */};
#define N_STATUSES (sizeof statuses / sizeof statuses[0])
static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5};
#define N_LATENCY (sizeof latency_bounds / sizeof latency_bounds[0])
static const int batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};
#define N_BATCH (sizeof batch_bounds / sizeof batch_bounds[0])

static const char *const *labels;
static int n_labels;
static atomic_ulong requests[METRICS_MAX_ROUTES + 1][N_STATUSES];
static atomic_ulong latency_buckets[N_LATENCY + 1], latency_count;
static _Atomic double latency_sum;
static atomic_ulong batch_buckets[N_BATCH + 1], batch_count, batch_inputs;

void metrics_init(const char *const *route_labels, int n_routes) {
    labels = route_labels;
    n_labels = n_routes < METRICS_MAX_ROUTES ? n_routes : METRICS_MAX_ROUTES;
}

void metrics_observe_request(int route_index, unsigned status, double seconds) {
    int r = route_index >= 0 && route_index < n_labels ? route_index : n_labels;
    size_t s = 0;
    while (statuses[s] && statuses[s] != status) s++;
    atomic_fetch_add(&requests[r][s], 1);
    size_t b = 0;
    while (b < N_LATENCY && seconds > latency_bounds[b]) b++;
    atomic_fetch_add(&latency_buckets[b], 1);
    atomic_fetch_add(&latency_count, 1);
    double old = atomic_load(&latency_sum);
    while (!atomic_compare_exchange_weak(&latency_sum, &old, old + seconds)) {
    }
}

void metrics_observe_batch(int size) {
    size_t b = 0;
    while (b < N_BATCH && size > batch_bounds[b]) b++;
    atomic_fetch_add(&batch_buckets[b], 1);
    atomic_fetch_add(&batch_count, 1);
    atomic_fetch_add(&batch_inputs, (unsigned long)size);
}

typedef struct text_buffer {
    char *data;
    size_t len, cap;
    int failed;
} text_buffer;

static void put(text_buffer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_buffer *t, const char *fmt, ...) {
    for (int attempt = 0; attempt < 2 && !t->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->data, cap);
        if (!grown)
            t->failed = 1;
        else
            t->data = grown, t->cap = cap;
    }
}

static void render_requests(text_buffer *t) {
    put(t, "# HELP tailord_requests_total HTTP requests by route and status.\n"
           "# TYPE tailord_requests_total counter\n");
    for (int r = 0; r <= n_labels; r++)
        for (size_t s = 0; s < N_STATUSES; s++) {
            unsigned long n = atomic_load(&requests[r][s]);
            if (!n) continue;
            char status[8];
            snprintf(status, sizeof status, "%u", statuses[s]);
            put(t, "tailord_requests_total{route=\"%s\",status=\"%s\"} %lu\n",
                r < n_labels ? labels[r] : "unmatched", statuses[s] ? status : "other", n);
        }
}

static void render_histograms(text_buffer *t) {
    put(t, "# HELP tailord_request_seconds Request latency.\n"
           "# TYPE tailord_request_seconds histogram\n");
    unsigned long cumulative = 0;
    for (size_t b = 0; b < N_LATENCY; b++) {
        cumulative += atomic_load(&latency_buckets[b]);
        put(t, "tailord_request_seconds_bucket{le=\"%g\"} %lu\n", latency_bounds[b], cumulative);
    }
    put(t, "tailord_request_seconds_bucket{le=\"+Inf\"} %lu\n", atomic_load(&latency_count));
    put(t, "tailord_request_seconds_sum %.6f\ntailord_request_seconds_count %lu\n",
        atomic_load(&latency_sum), atomic_load(&latency_count));
    put(t, "# HELP tailord_batch_size Inputs per forward pass.\n"
           "# TYPE tailord_batch_size histogram\n");
    cumulative = 0;
    for (size_t b = 0; b < N_BATCH; b++) {
        cumulative += atomic_load(&batch_buckets[b]);
        put(t, "tailord_batch_size_bucket{le=\"%d\"} %lu\n", batch_bounds[b], cumulative);
    }
    put(t, "tailord_batch_size_bucket{le=\"+Inf\"} %lu\n", atomic_load(&batch_count));
    put(t, "tailord_batch_size_sum %lu\ntailord_batch_size_count %lu\n", atomic_load(&batch_inputs),
        atomic_load(&batch_count));
}

static void render_gauge(text_buffer *t, const char *name, const char *help, long value) {
    put(t, "# HELP %s %s\n# TYPE %s gauge\n%s %ld\n", name, help, name, name, value);
}

char *metrics_render(const metrics_gauges *g) {
    text_buffer t = {.data = malloc(8192), .cap = 8192};
    if (!t.data) return NULL;
    render_requests(&t);
    render_histograms(&t);
    render_gauge(&t, "tailord_queue_depth", "Inputs waiting for the batcher.", g->queue_depth);
    render_gauge(&t, "tailord_requests_in_flight", "Requests accepted, not completed.",
                 g->in_flight);
    render_gauge(&t, "tailord_sessions", "Live sessions.", g->sessions);
    render_gauge(&t, "tailord_session_bytes", "Memory held by sessions.", g->session_bytes);
    render_gauge(&t, "tailord_catalogue_items", "Items in the served index.", g->catalogue_items);
    render_gauge(&t, "tailord_ready", "1 when model and index are loaded.", g->ready);
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
