/* Named parameter tensors over one flat buffer, declared and bound in two passes, loaded from
 * safetensors by name. Not for: optimiser logic (trainer/optim.c) or model structure. */
#include "param_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t shape_numel(int ndim, const int64_t *shape) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    return n;
}

static tl_status declare(param_set *s, const char *name, int ndim, const int64_t *shape,
                         tl_error *err) {
    if (s->count == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        param_tensor *t = realloc(s->tensors, cap * sizeof *t);
        if (!t) return tl_fail(err, TL_ERR_NOMEM, "parameter table: out of memory");
        s->tensors = t, s->cap = cap;
    }
    param_tensor *t = &s->tensors[s->count++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->offset = s->total;
    t->numel = shape_numel(ndim, shape);
    s->total += (t->numel + 15) & ~(size_t)15; /* 64-byte aligned tensors */
    return TL_OK;
}

static tl_status bind(param_set *s, const char *name, int ndim, const int64_t *shape, float **data,
                      float **grad, tl_error *err) {
    if (s->bind_index >= s->count)
        return tl_fail(err, TL_ERR_INVALID, "parameter %s: bound but never declared", name);
    const param_tensor *t = &s->tensors[s->bind_index++];
    if (strcmp(t->name, name) || t->ndim != ndim ||
        memcmp(t->shape, shape, (size_t)ndim * sizeof *shape))
        return tl_fail(err, TL_ERR_INVALID, "parameter %s: bound as %s or with another shape",
                       t->name, name);
    *data = s->data + t->offset;
    if (grad) *grad = s->grad ? s->grad + t->offset : NULL;
    return TL_OK;
}

tl_status param_set_tensor(param_set *s, float **data, float **grad, int ndim, const int64_t *shape,
                           const char *name, tl_error *err) {
    if (strlen(name) >= PARAM_NAME_MAX)
        return tl_fail(err, TL_ERR_LIMIT, "parameter name too long: %.64s...", name);
    if (ndim < 0 || ndim > PARAM_MAX_DIMS)
        return tl_fail(err, TL_ERR_INVALID, "parameter %s: %d dimensions", name, ndim);
    if (!s->data) return declare(s, name, ndim, shape, err);
    return bind(s, name, ndim, shape, data, grad, err);
}

tl_status param_set_allocate(param_set *s, int with_grad, tl_error *err) {
    size_t bytes = (s->total ? s->total : 16) * sizeof(float);
    s->data = aligned_alloc(64, bytes);
    s->grad = with_grad ? aligned_alloc(64, bytes) : NULL;
    if (!s->data || (with_grad && !s->grad)) {
        free(s->data), free(s->grad);
        s->data = s->grad = NULL;
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for %zu parameters", s->total);
    }
    memset(s->data, 0, bytes);
    if (s->grad) memset(s->grad, 0, bytes);
    s->bind_index = 0;
    return TL_OK;
}

tl_status param_set_load(param_set *s, st_file *f, tl_error *err) {
    for (size_t i = 0; i < s->count; i++) {
        const param_tensor *t = &s->tensors[i];
        const float *src;
        tl_status st = st_get_f32(f, t->name, t->ndim, t->shape, &src, err);
        if (st) return st;
        memcpy(s->data + t->offset, src, t->numel * sizeof(float));
    }
    return TL_OK;
}

void param_set_describe(const param_set *s, st_tensor *out, size_t *n) {
    for (size_t i = 0; i < s->count; i++) {
        const param_tensor *t = &s->tensors[i];
        st_tensor *o = &out[(*n)++];
        memset(o, 0, sizeof *o);
        o->name = t->name;
        o->dtype = ST_F32;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, (size_t)t->ndim * sizeof *t->shape);
        o->data = s->data + t->offset;
        o->nbytes = t->numel * sizeof(float);
    }
}

size_t param_set_present(const param_set *s, const st_file *f, const char **first_missing) {
    size_t n = 0;
    if (first_missing) *first_missing = NULL;
    for (size_t i = 0; i < s->count; i++) {
        if (st_find(f, s->tensors[i].name))
            n++;
        else if (first_missing && !*first_missing)
            *first_missing = s->tensors[i].name;
    }
    return n;
}

void param_set_zero_grad(param_set *s) {
    if (s->grad) memset(s->grad, 0, s->total * sizeof(float));
}

const param_tensor *param_set_find(const param_set *s, const char *name) {
    for (size_t i = 0; i < s->count; i++)
        if (!strcmp(s->tensors[i].name, name)) return &s->tensors[i];
    return NULL;
}

void param_set_free(param_set *s) {
    free(s->tensors);
    free(s->data);
    free(s->grad);
    memset(s, 0, sizeof *s);
}
