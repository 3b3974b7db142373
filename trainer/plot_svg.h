/* `tailor-train plot`: draws a metrics.jsonl (metrics_log.h) as one SVG file: the training
 * loss of each task over steps and, when the run evaluated, each evaluation metric over steps,
 * with axes, ticks and legends. Not for: interactive plots or other image formats. */
#ifndef TL_TRAINER_PLOT_SVG_H
#define TL_TRAINER_PLOT_SVG_H

#include <stddef.h>
#include <stdio.h>

#include "error.h"

typedef struct plot_summary {
    size_t step_records, eval_records, skipped_lines;
    size_t loss_series, eval_series;
} plot_summary;

/* Reads metrics from in and writes the SVG document to out. Lines that are not valid records
 * are skipped and counted. Fails (TL_ERR_FORMAT) when no step record has a finite loss. */
tl_status plot_metrics_svg(FILE *in, FILE *out, plot_summary *summary, tl_error *err);

#endif
