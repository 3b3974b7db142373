/* The training run's metrics as JSON lines (metrics.jsonl), written as training goes and read
 * back by `tailor-train plot`: one object per logged step, {"step", "task", "loss", "lr",
 * "rate", "time"}, and one per evaluation, {"step", "eval": {NAME: VALUE, ...}}.
 * Not for: deciding when to log (the training loop does). */
#ifndef TL_TRAINER_METRICS_LOG_H
#define TL_TRAINER_METRICS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

typedef struct metrics_log metrics_log;

/* Opens path for appending (a resumed run continues its file), creating it when missing.
 * On success *out is owned by the caller (metrics_log_close). */
tl_status metrics_log_open(const char *path, metrics_log **out, tl_error *err);

/* One training step of task: its loss, learning rate, samples per second and seconds since
 * the run started. Non-finite numbers are written as null. Each line is flushed. */
tl_status metrics_log_step(metrics_log *log, int64_t step, const char *task, double loss, double lr,
                           double rate, double time_s, tl_error *err);

/* One evaluation at step: n named values ("xmr.t2i_r1", "fic.cider_d", ...). */
tl_status metrics_log_eval(metrics_log *log, int64_t step, const char *const *names,
                           const double *values, size_t n, tl_error *err);

/* Closes the file; returns TL_ERR_IO when the final flush fails. log may be NULL. */
tl_status metrics_log_close(metrics_log *log, tl_error *err);

/* A record read back from a metrics file. Step records have task != NULL and no eval values;
 * evaluation records have task == NULL. Strings and arrays belong to the record. */
typedef struct metrics_record {
    int64_t step;
    char *task;
    double loss, lr, rate, time; /* NAN when absent or null */
    char **eval_names;
    double *eval_values;
    size_t n_eval;
} metrics_record;

/* Reads the next record from f, skipping lines that are not a valid record (counted in
 * *skipped). Returns 1 with *rec filled (free with metrics_record_free), 0 at end of file,
 * -1 when out of memory. */
int metrics_read_record(FILE *f, metrics_record *rec, size_t *skipped);

void metrics_record_free(metrics_record *rec);

#endif
