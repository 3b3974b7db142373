/* Training progress for people: on a terminal one self-rewriting line with a bar, step/total,
 * the latest loss of each task, rate and ETA; otherwise the same text as a plain line every
 * few seconds (logs stay readable). Not for: machine-readable metrics (metrics_log.h). */
#ifndef TL_TRAINER_PROGRESS_H
#define TL_TRAINER_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { PROGRESS_MAX_TASKS = 8 };

typedef struct progress {
    FILE *out;
    int on_terminal;         /* 1: rewrite one line; 0: print lines every plain_interval_s */
    double plain_interval_s; /* default 30 */
    int64_t total, first_step, step;
    double start_s, last_print_s, rate;
    char tasks[PROGRESS_MAX_TASKS][16];
    double losses[PROGRESS_MAX_TASKS];
    size_t n_tasks;
} progress;

/* Monotonic seconds, for the now_s arguments. */
double progress_now(void);

/* Starts reporting a run of total steps that resumes at first_step (0 for a fresh run), at
 * time now_s. on_terminal is decided from out (isatty). */
void progress_start(progress *p, FILE *out, int64_t total, int64_t first_step, double now_s);

/* Records step (the number of steps done), task's loss and samples per second, and prints
 * when due: at most 10 times a second on a terminal, every plain_interval_s otherwise. */
void progress_update(progress *p, int64_t step, const char *task, double loss, double samples_per_s,
                     double now_s);

/* Prints the final state and, on a terminal, ends the line. */
void progress_finish(progress *p, double now_s);

/* The progress text at now_s into buf (without bar or line ending), e.g.
 * "1200/90000 1.3% | xmr 0.532 tgir 1.2 | 45.2 samples/s | ETA 1:02:03". */
void progress_format(const progress *p, double now_s, char *buf, size_t size);

#endif
