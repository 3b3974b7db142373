/* JSON-lines logging: one object per line, the application/error log on stderr and the access
 * log on stdout (journald and container runtimes keep both). Thread-safe.
 * Not for: metrics (metrics.h). */
#ifndef TAILORD_LOG_H
#define TAILORD_LOG_H

#include <jansson.h>

typedef enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

/* Sets the lowest level written; returns -1 for an unknown name ("debug", "info", "warn",
 * "error"). */
int log_set_level_name(const char *name);

/* Writes {"ts", "level", "event", "msg"} plus the fields of extra (may be NULL; the
 * reference is stolen) to stderr. */
void log_event(log_level level, const char *event, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes one access line (fields given by the caller; the reference is stolen) to stdout. */
void log_access(json_t *fields);

#endif
