/* JSON-lines metrics: writing step and evaluation records, and reading them back leniently
 * (a crashed run may leave a torn last line). Not for: plotting (plot_svg.c). */
#include "metrics_log.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct metrics_log {
    FILE *file;
    char *path;
};

tl_status metrics_log_open(const char *path, metrics_log **out, tl_error *err) {
    metrics_log *log = calloc(1, sizeof *log);
    if (!log || !(log->path = strdup(path))) {
        free(log);
        return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    }
    log->file = fopen(path, "a");
    if (!log->file) {
        tl_status st = tl_fail(err, TL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        free(log->path), free(log);
        return st;
    }
    *out = log;
    return TL_OK;
}

static json_t *number_or_null(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

/* Writes obj (consumed) as one line and flushes it. */
static tl_status write_line(metrics_log *log, json_t *obj, tl_error *err) {
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (!text) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", log->path);
    int failed = fprintf(log->file, "%s\n", text) < 0 || fflush(log->file) != 0;
    free(text);
    if (failed) return tl_fail(err, TL_ERR_IO, "%s: write failed: %s", log->path, strerror(errno));
    return TL_OK;
}

tl_status metrics_log_step(metrics_log *log, int64_t step, const char *task, double loss, double lr,
                           double rate, double time_s, tl_error *err) {
    json_t *obj = json_object();
    if (obj) {
        json_object_set_new(obj, "step", json_integer(step));
        json_object_set_new(obj, "task", json_string(task));
        json_object_set_new(obj, "loss", number_or_null(loss));
        json_object_set_new(obj, "lr", number_or_null(lr));
        json_object_set_new(obj, "rate", number_or_null(rate));
        json_object_set_new(obj, "time", number_or_null(time_s));
    }
    return write_line(log, obj, err);
}

tl_status metrics_log_eval(metrics_log *log, int64_t step, const char *const *names,
                           const double *values, size_t n, tl_error *err) {
    json_t *obj = json_object(), *eval = json_object();
    if (obj && eval) {
        for (size_t i = 0; i < n; i++)
            json_object_set_new(eval, names[i], number_or_null(values[i]));
        json_object_set_new(obj, "step", json_integer(step));
        json_object_set_new(obj, "eval", eval);
        return write_line(log, obj, err);
    }
    json_decref(eval);
    return write_line(log, NULL, err);
}

tl_status metrics_log_close(metrics_log *log, tl_error *err) {
    if (!log) return TL_OK;
    tl_status st =
        fclose(log->file) ? tl_fail(err, TL_ERR_IO, "%s: close failed", log->path) : TL_OK;
    free(log->path);
    free(log);
    return st;
}

static double number_field(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Fills rec from an evaluation object; 0 when it holds no number. */
static int read_eval(const json_t *eval, metrics_record *rec) {
    size_t n = json_object_size(eval), k = 0;
    rec->eval_names = calloc(n + 1, sizeof *rec->eval_names);
    rec->eval_values = calloc(n + 1, sizeof *rec->eval_values);
    if (!rec->eval_names || !rec->eval_values) return -1;
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)eval, name, v) {
        if (!json_is_number(v)) continue;
        if (!(rec->eval_names[k] = strdup(name))) return -1;
        rec->eval_values[k] = json_number_value(v);
        rec->n_eval = ++k;
    }
    return k > 0;
}

/* 1: a valid record in rec, 0: not a record, -1: out of memory. */
static int parse_record(const char *line, metrics_record *rec) {
    json_t *obj = json_loads(line, 0, NULL);
    const json_t *step = json_object_get(obj, "step"), *task = json_object_get(obj, "task");
    const json_t *eval = json_object_get(obj, "eval");
    int ok = json_is_integer(step) && (json_is_string(task) || json_is_object(eval));
    if (ok) {
        rec->step = json_integer_value(step);
        rec->loss = number_field(obj, "loss"), rec->lr = number_field(obj, "lr");
        rec->rate = number_field(obj, "rate"), rec->time = number_field(obj, "time");
        if (json_is_string(task)) {
            rec->task = strdup(json_string_value(task));
            ok = rec->task ? 1 : -1;
        } else {
            ok = read_eval(eval, rec);
        }
    }
    json_decref(obj);
    return ok;
}

int metrics_read_record(FILE *f, metrics_record *rec, size_t *skipped) {
    char *line = NULL;
    size_t cap = 0;
    int result = 0;
    while (getline(&line, &cap, f) >= 0) {
        memset(rec, 0, sizeof *rec);
        result = parse_record(line, rec);
        if (result != 0) break;
        metrics_record_free(rec);
        if (strspn(line, " \t\r\n") != strlen(line)) (*skipped)++;
    }
    if (result < 0) metrics_record_free(rec);
    free(line);
    return result;
}

void metrics_record_free(metrics_record *rec) {
    for (size_t i = 0; rec->eval_names && i < rec->n_eval; i++) free(rec->eval_names[i]);
    free(rec->eval_names), free(rec->eval_values), free(rec->task);
    memset(rec, 0, sizeof *rec);
}
