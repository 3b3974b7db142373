/* AdamW with parameter groups and global-norm clipping over flat parameter sets.
 * Not for: schedules (schedule.c). */
#include "optim.h"

#include <fnmatch.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const lr_group_rule *rule_for(const char *name, const lr_group_rule *rules, size_t n_rules) {
    for (size_t i = 0; i < n_rules; i++)
        if (!fnmatch(rules[i].pattern, name, 0)) return &rules[i];
    return NULL;
}

static tl_status set_init(adamw_set *s, param_set *p, double set_mult, const adamw_config *cfg,
                          const lr_group_rule *rules, size_t n_rules, tl_error *err) {
    s->params = p;
    s->m = calloc(p->total ? p->total : 1, sizeof *s->m);
    s->v = calloc(p->total ? p->total : 1, sizeof *s->v);
    s->lr_mult = calloc(p->count ? p->count : 1, sizeof *s->lr_mult);
    s->weight_decay = calloc(p->count ? p->count : 1, sizeof *s->weight_decay);
    if (!s->m || !s->v || !s->lr_mult || !s->weight_decay)
        return tl_fail(err, TL_ERR_NOMEM, "optimiser: out of memory for %zu moments", p->total);
    for (size_t i = 0; i < p->count; i++) {
        const param_tensor *t = &p->tensors[i];
        const lr_group_rule *r = rule_for(t->name, rules, n_rules);
        s->lr_mult[i] = r ? r->lr_mult : set_mult;
        s->weight_decay[i] = t->ndim >= 2 || cfg->decay_1d ? cfg->weight_decay : 0;
        if (r && r->weight_decay >= 0) s->weight_decay[i] = r->weight_decay;
    }
    return TL_OK;
}

tl_status adamw_init(adamw *opt, const adamw_config *cfg, param_set *const *sets,
                     const double *set_lr_mult, size_t n, const lr_group_rule *rules,
                     size_t n_rules, tl_error *err) {
    memset(opt, 0, sizeof *opt);
    opt->cfg = *cfg;
    opt->sets = calloc(n ? n : 1, sizeof *opt->sets);
    if (!opt->sets) return tl_fail(err, TL_ERR_NOMEM, "optimiser: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!sets[i]->grad) continue;
        tl_status st = set_init(&opt->sets[opt->n_sets++], sets[i],
                                set_lr_mult ? set_lr_mult[i] : 1.0, cfg, rules, n_rules, err);
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
        free(opt->sets[i].lr_mult), free(opt->sets[i].weight_decay);
    }
    free(opt->sets);
    memset(opt, 0, sizeof *opt);
}

/* AdamW on one tensor's values [0, n) at offset off of set s, in float as PyTorch does: the loop
 * vectorises (trainer/meson.build builds the trainer without errno from libm), and a ViT-B/16
 * step spent 1.8 s here in scalar double arithmetic. */
static void tensor_step(const adamw *opt, adamw_set *s, size_t off, size_t n, double lr,
                        double weight_decay) {
    const adamw_config *c = &opt->cfg;
    double bc1 = 1 - pow(c->beta1, (double)opt->steps), bc2 = 1 - pow(c->beta2, (double)opt->steps);
    const float b1 = (float)c->beta1, b2 = (float)c->beta2, eps = (float)c->eps;
    const float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1 / sqrt(bc2));
    const float decay = (float)(lr * weight_decay);
    float *restrict p = s->params->data + off, *restrict m = s->m + off, *restrict v = s->v + off;
    const float *restrict g = s->params->grad + off;
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps) + decay * p[i];
    }
}

void adamw_step(adamw *opt, double lr) {
    opt->steps++;
    for (size_t k = 0; k < opt->n_sets; k++) {
        adamw_set *s = &opt->sets[k];
        for (size_t i = 0; i < s->params->count; i++) {
            const param_tensor *t = &s->params->tensors[i];
            tensor_step(opt, s, t->offset, t->numel, lr * s->lr_mult[i], s->weight_decay[i]);
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

/* Moment tensor names: NAME.exp_avg / NAME.exp_avg_sq. */
enum { STATE_NAME_MAX = PARAM_NAME_MAX + 16 };

static size_t tensor_count(const adamw *opt) {
    size_t n = 0;
    for (size_t k = 0; k < opt->n_sets; k++) n += opt->sets[k].params->count;
    return n;
}

/* Describes moment `which` (0: m, 1: v) of tensor t of set s into o, naming it in name. */
static void describe_moment(const adamw_set *s, const param_tensor *t, int which, char *name,
                            st_tensor *o) {
    snprintf(name, STATE_NAME_MAX, "%s.%s", t->name, which ? "exp_avg_sq" : "exp_avg");
    memset(o, 0, sizeof *o);
    o->name = name;
    o->dtype = ST_F32;
    o->ndim = t->ndim;
    memcpy(o->shape, t->shape, (size_t)t->ndim * sizeof *t->shape);
    o->data = (which ? s->v : s->m) + t->offset;
    o->nbytes = t->numel * sizeof(float);
}

tl_status adamw_save(const adamw *opt, const char *path, tl_error *err) {
    size_t n = 2 * tensor_count(opt) + 1, i = 0;
    st_tensor *t = calloc(n, sizeof *t);
    char *names = calloc(n, STATE_NAME_MAX);
    if (!t || !names) {
        free(t), free(names);
        return tl_fail(err, TL_ERR_NOMEM, "optimiser state: out of memory");
    }
    for (size_t k = 0; k < opt->n_sets; k++)
        for (size_t j = 0; j < opt->sets[k].params->count; j++, i += 2)
            for (int which = 0; which < 2; which++)
                describe_moment(&opt->sets[k], &opt->sets[k].params->tensors[j], which,
                                names + (i + which) * STATE_NAME_MAX, &t[i + which]);
    int64_t steps = opt->steps;
    t[i] = (st_tensor){
        .name = "step", .dtype = ST_I64, .ndim = 0, .data = &steps, .nbytes = sizeof steps};
    tl_status st = st_write(path, t, n, NULL, err);
    free(t), free(names);
    return st;
}

/* Copies moment `which` of tensor t of set s from f. */
static tl_status load_moment(adamw_set *s, const param_tensor *t, int which, st_file *f,
                             tl_error *err) {
    char name[STATE_NAME_MAX];
    st_tensor o;
    describe_moment(s, t, which, name, &o);
    const float *src;
    tl_status st = st_get_f32(f, name, t->ndim, t->shape, &src, err);
    if (!st) memcpy((which ? s->v : s->m) + t->offset, src, o.nbytes);
    return st;
}

tl_status adamw_load(adamw *opt, const char *path, tl_error *err) {
    st_file *f = NULL;
    tl_status st = st_open(&f, path, err);
    if (st) return st;
    for (size_t k = 0; k < opt->n_sets && !st; k++)
        for (size_t j = 0; j < opt->sets[k].params->count && !st; j++)
            for (int which = 0; which < 2 && !st; which++)
                st = load_moment(&opt->sets[k], &opt->sets[k].params->tensors[j], which, f, err);
    const st_tensor *step = st ? NULL : st_find(f, "step");
    if (!st && (!step || st_numel(step) != 1))
        st = tl_fail(err, TL_ERR_NOT_FOUND, "optimiser state %s: no scalar \"step\"", path);
    if (!st) st_to_i64(step, &opt->steps);
    st_close(f);
    return st;
}
