/* JSON-lines log writer (log.h): builds each line with jansson so every string is escaped, and
 * writes it with one fputs under stdio's own lock. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static log_level min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_set_level_name(const char *name) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, level_names[i])) {
            min_level = (log_level)i;
            return 0;
        }
    return -1;
}

static void set_timestamp(json_t *line) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    json_object_set_new(line, "ts", json_string(ts));
}

static void write_line(FILE *out, json_t *line) {
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) {
        flockfile(out);
        fputs(text, out);
        fputc('\n', out);
        fflush(out);
        funlockfile(out);
        free(text);
    }
    json_decref(line);
}

void log_event(log_level level, const char *event, json_t *extra, const char *fmt, ...) {
    if (level < min_level) {
        json_decref(extra);
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *line = json_object();
    set_timestamp(line);
    json_object_set_new(line, "level", json_string(level_names[level]));
    json_object_set_new(line, "event", json_string(event));
    json_object_set_new(line, "msg", json_string(msg));
    if (extra) json_object_update(line, extra);
    json_decref(extra);
    write_line(stderr, line);
}

void log_access(json_t *fields) {
    json_t *line = json_object();
    set_timestamp(line);
    json_object_set_new(line, "event", json_string("access"));
    json_object_update(line, fields);
    json_decref(fields);
    write_line(stdout, line);
}
