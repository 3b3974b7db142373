/* Learning-rate schedules (MODEL.md §2): linear warm-up from a factor of the base rate, then
 * either FAME-ViL's multi-step decay (× gamma at each milestone) or a cosine decay to a floor.
 * Not for: the optimiser step itself (optim.h). */
#ifndef TL_TRAINER_SCHEDULE_H
#define TL_TRAINER_SCHEDULE_H

#include <stdint.h>

#include "error.h"

#define SCHEDULE_MAX_MILESTONES 16

typedef enum schedule_kind { SCHEDULE_MULTISTEP, SCHEDULE_COSINE } schedule_kind;

typedef struct lr_schedule {
    schedule_kind kind;
    double base_lr;
    int64_t warmup_iters;                        /* linear warm-up length (0: none) */
    double warmup_factor;                        /* the factor at iteration 0 (FAME-ViL: 0.25) */
    int64_t milestones[SCHEDULE_MAX_MILESTONES]; /* multistep: ascending iterations */
    int n_milestones;
    double gamma;        /* multistep: factor per milestone passed (FAME-ViL: 0.1) */
    int64_t total_iters; /* cosine: the iteration where the floor is reached */
    double min_factor;   /* cosine: the floor as a factor of base_lr */
} lr_schedule;

/* FAME-ViL's schedule for base_lr: warm-up 0.25 → 1 over 10k iterations, × 0.1 at 50k and
 * 80k. */
lr_schedule schedule_fame_vil(double base_lr);

/* Checks s: positive base rate, warm-up factor in [0, 1], ascending milestones, gamma > 0,
 * cosine total ≥ warm-up. Errors are TL_ERR_INVALID naming the field. */
tl_status schedule_validate(const lr_schedule *s, tl_error *err);

/* The learning rate at iteration iter (0-based). */
double schedule_lr(const lr_schedule *s, int64_t iter);

#endif
