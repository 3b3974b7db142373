/* AdamW over parameter sets (MODEL.md §2 schedule; proto/train_config.md "optimizer"):
 * decoupled weight decay (by default none on 1-D tensors: biases, norms, scales), learning-rate
 * multipliers per set (e.g. the CLIP backbone) and per tensor from name patterns (parameter
 * groups, which can also set their own decay), and global-norm gradient clipping. Moments live in
 * flat buffers laid out like each set's gradient. Not for: learning-rate schedules (schedule.h) or
 * computing gradients (model/train_tasks.h). */
#ifndef TL_TRAINER_OPTIM_H
#define TL_TRAINER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "param_set.h"

typedef struct adamw_config {
    double beta1, beta2, eps, weight_decay; /* FAME-ViL: 0.9, 0.999, 1e-8, 1e-5 */
    int decay_1d; /* also decay 1-D tensors (biases, norm weights, scales); FAME-ViL: 0 */
} adamw_config;

/* Tensors whose name matches pattern (fnmatch(3) glob) get lr × lr_mult instead of their
 * set's multiplier, and weight_decay when ≥ 0 (< 0: the config's rule); the first matching
 * rule wins. */
typedef struct lr_group_rule {
    const char *pattern;
    double lr_mult, weight_decay;
} lr_group_rule;

/* One optimised set: its moments and, per tensor, the LR multiplier and the weight decay. */
typedef struct adamw_set {
    param_set *params;    /* borrowed; must have gradients */
    float *m, *v;         /* [params->total], owned */
    double *lr_mult;      /* [params->count], owned */
    double *weight_decay; /* [params->count], owned */
} adamw_set;

typedef struct adamw {
    adamw_config cfg;
    adamw_set *sets; /* [n_sets], owned */
    size_t n_sets;
    int64_t steps; /* steps taken (bias correction) */
} adamw;

/* Optimises every set of sets[0..n) that has gradients (sets without are skipped), set i at
 * lr × set_lr_mult[i] (set_lr_mult may be NULL: × 1) unless a rule matches the tensor.
 * On success free opt with adamw_free. */
tl_status adamw_init(adamw *opt, const adamw_config *cfg, param_set *const *sets,
                     const double *set_lr_mult, size_t n, const lr_group_rule *rules,
                     size_t n_rules, tl_error *err);
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
