/* Prometheus metrics of tailord: request counts by route and status, a request latency
 * histogram, a batch-size histogram, and gauges sampled when /metrics is read.
 * Counters are lock-free atomics, safe from any thread. Not for: logs (log.h). */
#ifndef TAILORD_METRICS_H
#define TAILORD_METRICS_H

#include <stddef.h>

#define METRICS_MAX_ROUTES 48

typedef struct metrics_gauges {
    long queue_depth, in_flight, sessions, session_bytes, catalogue_items;
    int ready;
} metrics_gauges;

/* Names the routes (labels of route_index 0..n-1); names are borrowed for the process life. */
void metrics_init(const char *const *route_labels, int n_routes);
/* route_index -1 counts as route "unmatched". */
void metrics_observe_request(int route_index, unsigned status, double seconds);
void metrics_observe_batch(int size);
/* The exposition text (caller frees), or NULL when out of memory. */
char *metrics_render(const metrics_gauges *gauges);

#endif
