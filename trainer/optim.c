/* AdamW with parameter groups and global-norm clipping over flat parameter sets.
 * Not for: schedules (schedule.c). */
#include "optim.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static double rule_mult(const char *name, const lr_group_rule *rules, size_t n_rules) {
    for (size_t i = 0; i < n_rules; i++)
        if (!fnmatch(rules[i].pattern, name, 0)) return rules[i].lr_mult;
    return 1.0;
}

static tl_status set_init(adamw_set *s, param_set *p, const lr_group_rule *rules, size_t n_rules,
                          tl_error *err) {
    s->params = p;
    s->m = calloc(p->total ? p->total : 1, sizeof *s->m);
    s->v = calloc(p->total ? p->total : 1, sizeof *s->v);
    s->lr_mult = calloc(p->count ? p->count : 1, sizeof *s->lr_mult);
    s->decays = calloc(p->count ? p->count : 1, 1);
    if (!s->m || !s->v || !s->lr_mult || !s->decays)
        return tl_fail(err, TL_ERR_NOMEM, "optimiser: out of memory for %zu moments", p->total);
    for (size_t i = 0; i < p->count; i++) {
        s->lr_mult[i] = rule_mult(p->tensors[i].name, rules, n_rules);
        s->decays[i] = !ends_with(p->tensors[i].name, ".bias");
    }
    return TL_OK;
}

tl_status adamw_init(adamw *opt, const adamw_config *cfg, param_set *const *sets, size_t n,
                     const lr_group_rule *rules, size_t n_rules, tl_error *err) {
    memset(opt, 0, sizeof *opt);
    opt->cfg = *cfg;
    opt->sets = calloc(n ? n : 1, sizeof *opt->sets);
    if (!opt->sets) return tl_fail(err, TL_ERR_NOMEM, "optimiser: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!sets[i]->grad) continue;
        tl_status st = set_init(&opt->sets[opt->n_sets++], sets[i], rules, n_rules, err);
        if (st) {
            adamw_free(opt);
            return st;
        }
    }
    return TL_OK;
}

void adamw_free(adamw *opt) {
    for (size_t i = 0; i < opt->n_sets; i++) {
        free(opt->sets[i].m), free(opt->sets[i].v);
        free(opt->sets[i].lr_mult), free(opt->sets[i].decays);
    }
    free(opt->sets);
    memset(opt, 0, sizeof *opt);
}

/* AdamW on one tensor's values [0, n) at offset off of set s. */
static void tensor_step(const adamw *opt, adamw_set *s, size_t off, size_t n, double lr,
                        int decays) {
    const adamw_config *c = &opt->cfg;
    double bc1 = 1 - pow(c->beta1, (double)opt->steps), bc2 = 1 - pow(c->beta2, (double)opt->steps);
    float *p = s->params->data + off, *g = s->params->grad + off, *m = s->m + off, *v = s->v + off;
    for (size_t i = 0; i < n; i++) {
        m[i] = (float)(c->beta1 * m[i] + (1 - c->beta1) * g[i]);
        v[i] = (float)(c->beta2 * v[i] + (1 - c->beta2) * (double)g[i] * g[i]);
        double update = (m[i] / bc1) / (sqrt(v[i] / bc2) + c->eps);
        if (decays) update += c->weight_decay * p[i];
        p[i] -= (float)(lr * update);
    }
}

void adamw_step(adamw *opt, double lr) {
    opt->steps++;
    for (size_t k = 0; k < opt->n_sets; k++) {
        adamw_set *s = &opt->sets[k];
        for (size_t i = 0; i < s->params->count; i++) {
            const param_tensor *t = &s->params->tensors[i];
            tensor_step(opt, s, t->offset, t->numel, lr * s->lr_mult[i], s->decays[i]);
        }
    }
}

double grad_global_norm(const adamw *opt) {
    double ss = 0;
    for (size_t k = 0; k < opt->n_sets; k++) {
        const param_set *p = opt->sets[k].params;
        for (size_t i = 0; i < p->total; i++) ss += (double)p->grad[i] * p->grad[i];
    }
    return sqrt(ss);
}

double grad_clip_global_norm(adamw *opt, double max_norm) {
    double norm = grad_global_norm(opt);
    if (max_norm <= 0 || norm <= max_norm) return norm;
    float scale = (float)(max_norm / norm);
    for (size_t k = 0; k < opt->n_sets; k++) {
        param_set *p = opt->sets[k].params;
        for (size_t i = 0; i < p->total; i++) p->grad[i] *= scale;
    }
    return norm;
}
