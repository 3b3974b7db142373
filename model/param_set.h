/* Trainable parameter sets (llm.c style): a spec table of named tensors over one flat float
 * buffer, with an optional gradient buffer of the same layout, so zeroing, optimiser steps and
 * checkpoints are loops over one array. Not for: deciding which tensors a model has
 * (train_model.c declares them) or inference weights (clip.c binds those zero-copy). */
#ifndef TL_PARAM_SET_H
#define TL_PARAM_SET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "safetensors.h"

#define PARAM_MAX_DIMS 4
#define PARAM_NAME_MAX 112

typedef struct param_tensor {
    char name[PARAM_NAME_MAX];
    int ndim; /* 0 for a scalar */
    int64_t shape[PARAM_MAX_DIMS];
    size_t offset, numel; /* in floats, into data and grad */
} param_tensor;

/* Built in two passes over the same declaring code: param_set_tensor first records each spec
 * (data still NULL), param_set_allocate creates the buffers, then a second pass of the same
 * calls binds the caller's pointers to the tensors in the same order. */
typedef struct param_set {
    param_tensor *tensors;
    size_t count, cap;
    size_t total;      /* floats */
    float *data;       /* [total], owned */
    float *grad;       /* [total], owned; NULL when the set is not trained */
    size_t bind_index; /* second pass: the next tensor to bind */
} param_set;

/* Declares (first pass) or binds (second pass) the next tensor called name, of shape
 * shape[0..ndim). Binding sets *data and *grad (grad may be NULL; *grad gets NULL when the
 * set has no gradients) and checks that name and shape match the declaration. */
tl_status param_set_tensor(param_set *s, float **data, float **grad, int ndim, const int64_t *shape,
                           const char *name, tl_error *err);

/* Allocates data (zeroed) and, with with_grad, a zeroed gradient; starts the binding pass. */
tl_status param_set_allocate(param_set *s, int with_grad, tl_error *err);

/* Copies every tensor of s from f by name (any float dtype; shapes must match). A missing
 * tensor is TL_ERR_NOT_FOUND naming it. */
tl_status param_set_load(param_set *s, st_file *f, tl_error *err);

void param_set_zero_grad(param_set *s);

/* How many of s's tensors f holds by name; *first_missing (may be NULL) gets the first absent
 * one's name (borrowed from s), or NULL. */
size_t param_set_present(const param_set *s, const st_file *f, const char **first_missing);

/* Appends a safetensors description (F32, borrowing s's data) of each tensor of s to
 * out[*n...]; out must have room for s->count more entries. */
void param_set_describe(const param_set *s, st_tensor *out, size_t *n);

/* The tensor called name, or NULL. */
const param_tensor *param_set_find(const param_set *s, const char *name);

/* Frees the buffers and the table (s itself is the caller's). */
void param_set_free(param_set *s);

#endif
