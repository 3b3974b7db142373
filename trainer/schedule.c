/* Warm-up plus multi-step or cosine learning-rate schedules. Not for: optimisation. */
#include "schedule.h"

#include <math.h>

lr_schedule schedule_fame_vil(double base_lr) {
    lr_schedule s = {SCHEDULE_MULTISTEP, base_lr, 10000, 0.25, {50000, 80000}, 2, 0.1, 90000, 0};
    return s;
}

tl_status schedule_validate(const lr_schedule *s, tl_error *err) {
    if (!(s->base_lr > 0)) return tl_fail(err, TL_ERR_INVALID, "schedule: base_lr must be > 0");
    if (s->warmup_iters < 0 || !(s->warmup_factor >= 0 && s->warmup_factor <= 1))
        return tl_fail(err, TL_ERR_INVALID, "schedule: warm-up needs iters >= 0, factor in [0,1]");
    if (s->kind == SCHEDULE_COSINE &&
        (s->total_iters < s->warmup_iters || !(s->min_factor >= 0 && s->min_factor <= 1)))
        return tl_fail(err, TL_ERR_INVALID,
                       "schedule: cosine needs total_iters >= warmup_iters, min_factor in [0,1]");
    if (s->kind != SCHEDULE_MULTISTEP) return TL_OK;
    if (s->n_milestones < 0 || s->n_milestones > SCHEDULE_MAX_MILESTONES || !(s->gamma > 0))
        return tl_fail(err, TL_ERR_INVALID, "schedule: 0..%d milestones and gamma > 0",
                       SCHEDULE_MAX_MILESTONES);
    for (int i = 1; i < s->n_milestones; i++)
        if (s->milestones[i] <= s->milestones[i - 1])
            return tl_fail(err, TL_ERR_INVALID, "schedule: milestones must ascend");
    return TL_OK;
}

static double warmup(const lr_schedule *s, int64_t iter) {
    if (iter >= s->warmup_iters) return 1.0;
    double alpha = (double)iter / (double)s->warmup_iters;
    return s->warmup_factor * (1 - alpha) + alpha;
}

double schedule_lr(const lr_schedule *s, int64_t iter) {
    double f = warmup(s, iter);
    if (s->kind == SCHEDULE_MULTISTEP) {
        for (int i = 0; i < s->n_milestones; i++)
            if (iter >= s->milestones[i]) f *= s->gamma;
        return s->base_lr * f;
    }
    if (iter < s->warmup_iters) return s->base_lr * f;
    double span = (double)(s->total_iters - s->warmup_iters);
    double progress = span > 0 ? (double)(iter - s->warmup_iters) / span : 1.0;
    if (progress > 1) progress = 1;
    double cosine = 0.5 * (1 + cos(M_PI * progress));
    return s->base_lr * (s->min_factor + (1 - s->min_factor) * cosine);
}
