/* safetensors reading (memory-mapped, fully validated) and atomic writing.
 * Not for: interpreting tensor names; the model loader does that. */
#ifndef TL_SAFETENSORS_H
#define TL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES (100u << 20) /* 100 MiB, as HF's reader */

typedef enum st_dtype {
    ST_BOOL, ST_U8, ST_I8, ST_U16, ST_I16, ST_F16, ST_BF16,
    ST_U32, ST_I32, ST_F32, ST_U64, ST_I64, ST_F64,
} st_dtype;

typedef struct st_tensor {
    const char *name;
    st_dtype dtype;
    int ndim;                     /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    const void *data;             /* points into the mapping (reader) or caller memory (writer) */
    size_t nbytes;
} st_tensor;

/* A validated, mapped file, or a sharded set of files behind model.safetensors.index.json. */
typedef struct st_file st_file;

/* Maps and validates one .safetensors file. On success *out is owned by the caller
 * (free with st_close). Every malformation is a TL_ERR_FORMAT naming the problem. */
tl_status st_open(st_file **out, const char *path, tl_error *err);

/* Opens DIR/model.safetensors, or every shard listed in DIR/model.safetensors.index.json. */
tl_status st_open_dir(st_file **out, const char *dir, tl_error *err);

/* Same validation as st_open, on bytes already in memory (borrowed, must outlive the file).
 * Used by the fuzz target and by tests. */
tl_status st_open_memory(st_file **out, const void *bytes, size_t len, tl_error *err);

void st_close(st_file *f);

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);
const st_tensor *st_find(const st_file *f, const char *name); /* NULL when absent */

size_t st_dtype_size(st_dtype dt);
const char *st_dtype_name(st_dtype dt);
int64_t st_numel(const st_tensor *t);

/* Returns a float32 view of tensor `name`, checking that its shape equals shape[0..ndim).
 * F32 data is returned zero-copy when aligned; F16/BF16/F64 (and unaligned F32) are
 * converted once into a buffer owned by f. Errors name the tensor: TL_ERR_NOT_FOUND when
 * absent, TL_ERR_FORMAT on shape mismatch, TL_ERR_UNSUPPORTED on a non-float dtype. */
tl_status st_get_f32(st_file *f, const char *name, int ndim, const int64_t *shape,
                     const float **out, tl_error *err);

/* Converts any numeric tensor element-wise into caller memory of st_numel(t) elements. */
void st_to_f32(const st_tensor *t, float *dst);
void st_to_f64(const st_tensor *t, double *dst);
void st_to_i64(const st_tensor *t, int64_t *dst);

/* Writes tensors[0..n) to path atomically: a temp file beside it, fsync, rename, fsync of
 * the directory. metadata_json may be NULL or a JSON object of string values for
 * "__metadata__". Data is written little-endian, packed, in the order given. */
tl_status st_write(const char *path, const st_tensor *tensors, size_t n,
                   const char *metadata_json, tl_error *err);

#endif
