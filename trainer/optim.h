/* AdamW over parameter sets (MODEL.md §2 schedule): decoupled weight decay, none on biases,
 * learning-rate multipliers per tensor from name patterns (parameter groups), and global-norm
 * gradient clipping. Moments live in flat buffers laid out like each set's gradient.
 * Not for: learning-rate schedules (schedule.h) or computing gradients (model/train_tasks.h). */
#ifndef TL_TRAINER_OPTIM_H
#define TL_TRAINER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "param_set.h"

typedef struct adamw_config {
    double beta1, beta2, eps, weight_decay; /* FAME-ViL: 0.9, 0.999, 1e-8, 1e-5 */
} adamw_config;

/* Tensors whose name matches pattern (fnmatch(3) glob) get lr × lr_mult; the first matching
 * rule wins, no match means × 1. */
typedef struct lr_group_rule {
    const char *pattern;
    double lr_mult;
} lr_group_rule;

/* One optimised set: its moments and, per tensor, the LR multiplier and whether it decays. */
typedef struct adamw_set {
    param_set *params; /* borrowed; must have gradients */
    float *m, *v;      /* [params->total], owned */
    double *lr_mult;   /* [params->count], owned */
    unsigned char *decays;
} adamw_set;

typedef struct adamw {
    adamw_config cfg;
    adamw_set *sets; /* [n_sets], owned */
    size_t n_sets;
    int64_t steps; /* steps taken (bias correction) */
} adamw;

/* Optimises every set of sets[0..n) that has gradients (sets without are skipped). Biases
 * (names ending in ".bias") get no weight decay. On success free opt with adamw_free. */
tl_status adamw_init(adamw *opt, const adamw_config *cfg, param_set *const *sets, size_t n,
                     const lr_group_rule *rules, size_t n_rules, tl_error *err);
void adamw_free(adamw *opt);

/* One AdamW step at learning rate lr (times each tensor's multiplier) from the gradients:
 * θ ← θ − lr·(m̂ / (√v̂ + eps) + wd·θ). Gradients are left as they are. */
void adamw_step(adamw *opt, double lr);

/* Writes the moments ("NAME.exp_avg", "NAME.exp_avg_sq", F32) and the step count ("step",
 * I64 scalar) to the safetensors file path (MODEL.md §5 trainer_state.safetensors). */
tl_status adamw_save(const adamw *opt, const char *path, tl_error *err);

/* Restores what adamw_save wrote into opt (built over the same sets), so training resumes
 * exactly. A missing or mis-shaped tensor is an error naming it; opt is then unchanged in
 * its step count but may hold some restored moments. */
tl_status adamw_load(adamw *opt, const char *path, tl_error *err);

/* The L2 norm of all gradients of opt's sets together. */
double grad_global_norm(const adamw *opt);

/* Scales every gradient by max_norm / norm when the global norm exceeds max_norm (> 0);
 * returns the norm before clipping. */
double grad_clip_global_norm(adamw *opt, double max_norm);

#endif
