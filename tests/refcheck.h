/* Shared pieces of `refcheck DIR`: TAP output with one case per checked quantity, loading of
 * reference tensors and JSON, tolerance comparisons. Each folder kind (clip-tiny, tailor-tiny,
 * ...) has its own refcheck_KIND.c with a detect and a run function listed in refcheck.c. */
#ifndef TL_REFCHECK_H
#define TL_REFCHECK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

typedef struct refcheck {
    int count, failed;
} refcheck;

/* Prints "ok N - name" or "not ok N - name"; returns pass. */
int rc_case(refcheck *rc, int pass, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One case: max |got - want| over n values ≤ tol; prints the worst index on failure. */
int rc_compare(refcheck *rc, const char *name, const float *got, const float *want, size_t n,
               double tol);

/* Tensor `name` of f as malloc'd float32 / int64 (caller frees) with its element count in
 * *count (may be NULL); NULL when absent (printed as a diagnostic). */
float *rc_tensor_f32(st_file *f, const char *name, size_t *count);
int64_t *rc_tensor_i64(st_file *f, const char *name, size_t *count);

/* Loads DIR/NAME as JSON (caller json_decref); NULL when absent or malformed. */
json_t *rc_load_json(const char *dir, const char *name);

/* A number from a JSON path of object keys ("a", "b", NULL), or fallback. */
double rc_json_number(const json_t *root, double fallback, ...);

/* refcheck_util.c: 1 when DIR/FILE opens as safetensors and holds tensors name_a and name_b. */
int rc_file_has_tensors(const char *dir, const char *file, const char *name_a, const char *name_b);

/* refcheck_util.c: one case comparing got[n] with tensor `name` of f (max |diff| ≤ tol), called
 * label; fails when the tensor is missing or holds other than n values. Returns pass. */
int rc_compare_tensor(refcheck *rc, st_file *f, const char *name, const char *label,
                      const float *got, size_t n, double tol);

/* Folder kinds. detect returns 1 when DIR is of the kind; run adds its cases to rc. */
int refcheck_clip_detect(const char *dir);
void refcheck_clip_run(refcheck *rc, const char *dir);
int refcheck_tailor_detect(const char *dir);
void refcheck_tailor_run(refcheck *rc, const char *dir);

#endif
