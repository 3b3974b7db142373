/* safetensors: maps and fully validates .safetensors files (single or HF-sharded), converts
 * tensors to float, and writes files atomically. Not for: knowing what tensor names mean.
 * Assumes a little-endian host, as the format stores little-endian data. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MEMORY_LABEL "<memory>"
#define ST_INDEX_NAME   "model.safetensors.index.json"
#define ST_SINGLE_NAME  "model.safetensors"

typedef struct st_entry {
    st_tensor tensor; /* tensor.name is owned (strdup) */
    size_t shard;     /* index into st_file.shards */
    size_t begin;     /* data_offsets relative to the shard's data section */
    float *f32;       /* converted copy made by st_get_f32, or NULL */
} st_entry;

typedef struct st_shard {
    char *label; /* file path or ST_MEMORY_LABEL, for messages */
    void *map;   /* mmap'ed bytes, or NULL for st_open_memory */
    size_t map_size;
} st_shard;

struct st_file {
    st_entry *entries;
    size_t count, capacity;
    st_shard *shards;
    size_t n_shards;
    st_entry **by_name; /* entries sorted by name, for st_find */
};

static const char *const dtype_names[] = {
    [ST_BOOL] = "BOOL", [ST_U8] = "U8",     [ST_I8] = "I8",   [ST_U16] = "U16", [ST_I16] = "I16",
    [ST_F16] = "F16",   [ST_BF16] = "BF16", [ST_U32] = "U32", [ST_I32] = "I32", [ST_F32] = "F32",
    [ST_U64] = "U64",   [ST_I64] = "I64",   [ST_F64] = "F64",
};
static const size_t dtype_sizes[] = {
    [ST_BOOL] = 1, [ST_U8] = 1,   [ST_I8] = 1,  [ST_U16] = 2, [ST_I16] = 2,
    [ST_F16] = 2,  [ST_BF16] = 2, [ST_U32] = 4, [ST_I32] = 4, [ST_F32] = 4,
    [ST_U64] = 8,  [ST_I64] = 8,  [ST_F64] = 8,
};
#define ST_N_DTYPES (sizeof dtype_names / sizeof dtype_names[0])

size_t st_dtype_size(st_dtype dt) {
    return (unsigned)dt < ST_N_DTYPES ? dtype_sizes[dt] : 0;
}

const char *st_dtype_name(st_dtype dt) {
    return (unsigned)dt < ST_N_DTYPES ? dtype_names[dt] : "?";
}

int64_t st_numel(const st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* Writes "[a,b,c]" into buf (caller memory); returns buf. */
static const char *format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, i ? "," : "", shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---- element conversion ---- */

/* Exact IEEE half -> single, including subnormals, infinities and NaN payloads. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0x1f) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else { /* subnormal: normalise the mantissa */
        int shift = 0;
        while (!(mantissa & 0x400)) mantissa <<= 1, shift++;
        bits = sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

#define LOAD(type, p)                                                                              \
    ({                                                                                             \
        type v_;                                                                                   \
        memcpy(&v_, (p), sizeof v_);                                                               \
        v_;                                                                                        \
    })

/* One element of dtype dt at p (any alignment) as a double. */
static double element_as_f64(st_dtype dt, const unsigned char *p) {
    switch (dt) {
        case ST_BOOL:
            return *p != 0;
        case ST_U8:
            return *p;
        case ST_I8:
            return (int8_t)*p;
        case ST_U16:
            return LOAD(uint16_t, p);
        case ST_I16:
            return LOAD(int16_t, p);
        case ST_F16:
            return f16_to_f32(LOAD(uint16_t, p));
        case ST_BF16:
            return bf16_to_f32(LOAD(uint16_t, p));
        case ST_U32:
            return LOAD(uint32_t, p);
        case ST_I32:
            return LOAD(int32_t, p);
        case ST_F32:
            return LOAD(float, p);
        case ST_U64:
            return (double)LOAD(uint64_t, p);
        case ST_I64:
            return (double)LOAD(int64_t, p);
        case ST_F64:
            return LOAD(double, p);
    }
    return 0;
}

/* One element as int64: integers exactly (U64 above INT64_MAX saturates), floats truncated
 * toward zero and saturated, NaN as 0. */
static int64_t element_as_i64(st_dtype dt, const unsigned char *p) {
    switch (dt) {
        case ST_U64: {
            uint64_t u = LOAD(uint64_t, p);
            return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
        }
        case ST_I64:
            return LOAD(int64_t, p);
        case ST_F16:
        case ST_BF16:
        case ST_F32:
        case ST_F64: {
            double d = element_as_f64(dt, p);
            if (d != d) return 0;
            if (d >= 9223372036854775807.0) return INT64_MAX;
            if (d <= -9223372036854775808.0) return INT64_MIN;
            return (int64_t)d;
        }
        default:
            return (int64_t)element_as_f64(dt, p); /* narrow integers are exact */
    }
}

void st_to_f64(const st_tensor *t, double *dst) {
    const unsigned char *src = t->data;
    size_t size = st_dtype_size(t->dtype);
    int64_t n = st_numel(t);
    for (int64_t i = 0; i < n; i++) dst[i] = element_as_f64(t->dtype, src + (size_t)i * size);
}

void st_to_i64(const st_tensor *t, int64_t *dst) {
    const unsigned char *src = t->data;
    size_t size = st_dtype_size(t->dtype);
    int64_t n = st_numel(t);
    for (int64_t i = 0; i < n; i++) dst[i] = element_as_i64(t->dtype, src + (size_t)i * size);
}

void st_to_f32(const st_tensor *t, float *dst) {
    const unsigned char *src = t->data;
    int64_t n = st_numel(t);
    switch (t->dtype) {
        case ST_F32:
            if (n > 0) memcpy(dst, src, (size_t)n * sizeof(float));
            return;
        case ST_F16:
            for (int64_t i = 0; i < n; i++) dst[i] = f16_to_f32(LOAD(uint16_t, src + 2 * i));
            return;
        case ST_BF16:
            for (int64_t i = 0; i < n; i++) dst[i] = bf16_to_f32(LOAD(uint16_t, src + 2 * i));
            return;
        default: {
            size_t size = st_dtype_size(t->dtype);
            for (int64_t i = 0; i < n; i++)
                dst[i] = (float)element_as_f64(t->dtype, src + (size_t)i * size);
        }
    }
}

/* ---- header validation ---- */

static tl_status parse_dtype(const char *label, const char *name, json_t *value, st_dtype *out,
                             tl_error *err) {
    const char *s = json_string_value(value);
    if (!s)
        return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", label, name);
    for (size_t i = 0; i < ST_N_DTYPES; i++) {
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (st_dtype)i;
            return TL_OK;
        }
    }
    return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", label, name, s);
}

/* Fills t->ndim and t->shape; *numel gets the element count (checked for overflow of the
 * byte size as well). */
static tl_status parse_shape(const char *label, const char *name, json_t *value, size_t elem_size,
                             st_tensor *t, uint64_t *numel, tl_error *err) {
    if (!json_is_array(value))
        return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': shape is not an array", label, name);
    if (json_array_size(value) > ST_MAX_DIMS)
        return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': shape has %zu dims (max %d)", label,
                       name, json_array_size(value), ST_MAX_DIMS);
    uint64_t n = 1;
    t->ndim = (int)json_array_size(value);
    for (int i = 0; i < t->ndim; i++) {
        json_t *d = json_array_get(value, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return tl_fail(err, TL_ERR_FORMAT,
                           "%s: tensor '%s': shape dim %d is not a non-negative integer", label,
                           name, i);
        t->shape[i] = json_integer_value(d);
        if (__builtin_mul_overflow(n, (uint64_t)t->shape[i], &n) || n > (uint64_t)INT64_MAX)
            return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': shape overflows", label, name);
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)elem_size, &bytes) || bytes > SIZE_MAX)
        return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': shape overflows", label, name);
    *numel = n;
    return TL_OK;
}

static tl_status parse_offsets(const char *label, const char *name, json_t *value, size_t data_len,
                               size_t *begin, size_t *end, tl_error *err) {
    json_t *b = json_array_get(value, 0), *e = json_array_get(value, 1);
    if (!json_is_array(value) || json_array_size(value) != 2 || !json_is_integer(b) ||
        !json_is_integer(e) || json_integer_value(b) < 0 || json_integer_value(e) < 0)
        return tl_fail(err, TL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets is not [begin, end] of non-negative integers",
                       label, name);
    uint64_t ub = (uint64_t)json_integer_value(b), ue = (uint64_t)json_integer_value(e);
    if (ub > ue || ue > data_len)
        return tl_fail(err, TL_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                       "] outside the data section of %zu bytes",
                       label, name, ub, ue, data_len);
    *begin = (size_t)ub;
    *end = (size_t)ue;
    return TL_OK;
}

/* Validates one header entry and fills *e (name not yet set). */
static tl_status parse_entry(const char *label, const char *name, json_t *value,
                             const unsigned char *data, size_t data_len, st_entry *e,
                             tl_error *err) {
    if (!json_is_object(value))
        return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': entry is not an object", label, name);
    st_tensor *t = &e->tensor;
    uint64_t numel = 0;
    size_t begin = 0, end = 0;
    tl_status s = parse_dtype(label, name, json_object_get(value, "dtype"), &t->dtype, err);
    if (!s)
        s = parse_shape(label, name, json_object_get(value, "shape"), st_dtype_size(t->dtype), t,
                        &numel, err);
    if (!s)
        s = parse_offsets(label, name, json_object_get(value, "data_offsets"), data_len, &begin,
                          &end, err);
    if (s) return s;
    t->nbytes = end - begin;
    if (numel * st_dtype_size(t->dtype) != t->nbytes) {
        char shape[160];
        return tl_fail(err, TL_ERR_FORMAT,
                       "%s: tensor '%s': %s %s needs %" PRIu64 " bytes but data_offsets span %zu",
                       label, name, st_dtype_name(t->dtype),
                       format_shape(shape, sizeof shape, t->ndim, t->shape),
                       numel * st_dtype_size(t->dtype), t->nbytes);
    }
    t->data = data + begin;
    e->begin = begin;
    return TL_OK;
}

/* Checks that value is an object of strings; failures carry `code`. */
static tl_status check_metadata(const char *label, json_t *value, tl_status code, tl_error *err) {
    if (!json_is_object(value))
        return tl_fail(err, code, "%s: __metadata__ is not an object", label);
    const char *key;
    json_t *v;
    json_object_foreach(value, key, v) {
        if (!json_is_string(v))
            return tl_fail(err, code, "%s: __metadata__ value '%s' is not a string", label, key);
    }
    return TL_OK;
}

static int compare_entry_begin(const void *a, const void *b) {
    const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->tensor.nbytes > y->tensor.nbytes) - (x->tensor.nbytes < y->tensor.nbytes);
}

/* Checks that f->entries[first..count) (one shard) occupy disjoint byte ranges. */
static tl_status check_no_overlap(const char *label, st_file *f, size_t first, tl_error *err) {
    size_t n = f->count - first;
    if (n < 2) return TL_OK;
    st_entry **order = malloc(n * sizeof *order);
    if (!order) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < n; i++) order[i] = &f->entries[first + i];
    qsort(order, n, sizeof *order, compare_entry_begin);
    tl_status s = TL_OK;
    for (size_t i = 1; i < n && !s; i++) {
        const st_entry *prev = order[i - 1], *cur = order[i];
        if (cur->begin < prev->begin + prev->tensor.nbytes)
            s = tl_fail(err, TL_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", label,
                        prev->tensor.name, cur->tensor.name);
    }
    free(order);
    return s;
}

/* ---- st_file construction ---- */

static tl_status reserve_entries(st_file *f, size_t extra, tl_error *err) {
    if (f->count + extra <= f->capacity) return TL_OK;
    size_t capacity = f->capacity ? f->capacity : 64;
    while (capacity < f->count + extra) capacity *= 2;
    st_entry *grown = realloc(f->entries, capacity * sizeof *grown);
    if (!grown) return tl_fail(err, TL_ERR_NOMEM, "out of memory for %zu tensors", capacity);
    f->entries = grown;
    f->capacity = capacity;
    return TL_OK;
}

/* Reads the 8-byte header length and checks it against the limit and the buffer size. */
static tl_status read_header_length(const char *label, const unsigned char *bytes, size_t len,
                                    size_t *header_len, tl_error *err) {
    if (len < 8)
        return tl_fail(err, TL_ERR_FORMAT,
                       "%s: %zu bytes is too short for the 8-byte header length", label, len);
    uint64_t n = LOAD(uint64_t, bytes);
    if (n > ST_MAX_HEADER_BYTES)
        return tl_fail(err, TL_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %u",
                       label, n, ST_MAX_HEADER_BYTES);
    if (n > len - 8)
        return tl_fail(err, TL_ERR_FORMAT,
                       "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)",
                       label, n, len);
    *header_len = (size_t)n;
    return TL_OK;
}

static tl_status parse_header_json(const char *label, const unsigned char *bytes, size_t n,
                                   json_t **out, tl_error *err) {
    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return tl_fail(err, TL_ERR_FORMAT, "%s: header is not valid JSON: %s (byte %d)", label,
                       jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return tl_fail(err, TL_ERR_FORMAT, "%s: header is not a JSON object", label);
    }
    *out = root;
    return TL_OK;
}

/* Appends the tensors of one validated header to f. */
static tl_status add_header_entries(st_file *f, const char *label, json_t *root, size_t shard,
                                    const unsigned char *data, size_t data_len, tl_error *err) {
    size_t first = f->count;
    tl_status s = reserve_entries(f, json_object_size(root), err);
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (s) break;
        if (strcmp(key, "__metadata__") == 0) {
            s = check_metadata(label, value, TL_ERR_FORMAT, err);
            continue;
        }
        st_entry *e = &f->entries[f->count];
        memset(e, 0, sizeof *e);
        e->shard = shard;
        s = parse_entry(label, key, value, data, data_len, e, err);
        if (s) break;
        if (!(e->tensor.name = strdup(key)))
            s = tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", label);
        else
            f->count++;
    }
    if (!s) s = check_no_overlap(label, f, first, err);
    return s;
}

/* Validates bytes[0..len) as one safetensors file and appends its tensors to f as shard
 * `shard`. bytes are borrowed and must outlive f. */
static tl_status add_shard_bytes(st_file *f, size_t shard, const unsigned char *bytes, size_t len,
                                 tl_error *err) {
    const char *label = f->shards[shard].label;
    size_t header_len = 0;
    json_t *root = NULL;
    tl_status s = read_header_length(label, bytes, len, &header_len, err);
    if (!s) s = parse_header_json(label, bytes + 8, header_len, &root, err);
    if (!s)
        s = add_header_entries(f, label, root, shard, bytes + 8 + header_len, len - 8 - header_len,
                               err);
    json_decref(root);
    return s;
}

static tl_status add_shard_slot(st_file *f, const char *label, size_t *shard, tl_error *err) {
    st_shard *grown = realloc(f->shards, (f->n_shards + 1) * sizeof *grown);
    if (!grown) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", label);
    f->shards = grown;
    st_shard *sh = &f->shards[f->n_shards];
    memset(sh, 0, sizeof *sh);
    if (!(sh->label = strdup(label))) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", label);
    *shard = f->n_shards++;
    return TL_OK;
}

/* Maps path read-only and appends its tensors to f. */
static tl_status add_shard_file(st_file *f, const char *path, tl_error *err) {
    size_t shard = 0;
    tl_status s = add_shard_slot(f, path, &shard, err);
    if (s) return s;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return tl_fail(err, e == ENOENT ? TL_ERR_NOT_FOUND : TL_ERR_IO, "%s: cannot open: %s", path,
                       strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        s = tl_fail(err, TL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (sb.st_size < 8) {
        s = tl_fail(err, TL_ERR_FORMAT, "%s: %lld bytes is too short for the 8-byte header length",
                    path, (long long)sb.st_size);
    } else {
        void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            s = tl_fail(err, TL_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        } else {
            f->shards[shard].map = map;
            f->shards[shard].map_size = (size_t)sb.st_size;
        }
    }
    close(fd);
    if (!s) s = add_shard_bytes(f, shard, f->shards[shard].map, f->shards[shard].map_size, err);
    return s;
}

static int compare_entry_name(const void *a, const void *b) {
    return strcmp((*(st_entry *const *)a)->tensor.name, (*(st_entry *const *)b)->tensor.name);
}

/* Builds the by-name index and the f32 cache slots; rejects names repeated across shards. */
static tl_status finish_file(st_file *f, tl_error *err) {
    f->by_name = malloc((f->count ? f->count : 1) * sizeof *f->by_name);
    if (!f->by_name) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < f->count; i++) f->by_name[i] = &f->entries[i];
    qsort(f->by_name, f->count, sizeof *f->by_name, compare_entry_name);
    for (size_t i = 1; i < f->count; i++) {
        const st_entry *a = f->by_name[i - 1], *b = f->by_name[i];
        if (strcmp(a->tensor.name, b->tensor.name) == 0)
            return tl_fail(err, TL_ERR_FORMAT, "tensor '%s' appears in both %s and %s",
                           a->tensor.name, f->shards[a->shard].label, f->shards[b->shard].label);
    }
    return TL_OK;
}

static tl_status new_file(st_file **out, tl_error *err) {
    *out = calloc(1, sizeof **out);
    return *out ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
}

/* Stores f in *out on success, frees it otherwise. */
static tl_status hand_over(st_file **out, st_file *f, tl_status s) {
    if (s) {
        st_close(f);
        f = NULL;
    }
    *out = f;
    return s;
}

tl_status st_open(st_file **out, const char *path, tl_error *err) {
    st_file *f;
    *out = NULL;
    tl_status s = new_file(&f, err);
    if (s) return s;
    s = add_shard_file(f, path, err);
    if (!s) s = finish_file(f, err);
    return hand_over(out, f, s);
}

tl_status st_open_memory(st_file **out, const void *bytes, size_t len, tl_error *err) {
    st_file *f;
    size_t shard = 0;
    *out = NULL;
    tl_status s = new_file(&f, err);
    if (s) return s;
    s = add_shard_slot(f, ST_MEMORY_LABEL, &shard, err);
    if (!s) s = add_shard_bytes(f, shard, bytes, len, err);
    if (!s) s = finish_file(f, err);
    return hand_over(out, f, s);
}

void st_close(st_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->count; i++) {
        free((char *)f->entries[i].tensor.name);
        free(f->entries[i].f32);
    }
    for (size_t i = 0; i < f->n_shards; i++) {
        if (f->shards[i].map) munmap(f->shards[i].map, f->shards[i].map_size);
        free(f->shards[i].label);
    }
    free(f->entries);
    free(f->shards);
    free(f->by_name);
    free(f);
}

/* ---- sharded directories ---- */

static tl_status check_shard_filename(const char *index, const char *tensor, const char *shard,
                                      tl_error *err) {
    if (!*shard || strchr(shard, '/') || strstr(shard, ".."))
        return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s': shard file name '%s' is not allowed",
                       index, tensor, shard);
    return TL_OK;
}

/* Opens every distinct shard named in weight_map, in order of first mention. */
static tl_status open_index_shards(st_file *f, const char *dir, const char *index,
                                   json_t *weight_map, tl_error *err) {
    const char *tensor;
    json_t *value;
    json_object_foreach(weight_map, tensor, value) {
        const char *shard = json_string_value(value);
        if (!shard)
            return tl_fail(err, TL_ERR_FORMAT, "%s: weight_map value for '%s' is not a string",
                           index, tensor);
        tl_status s = check_shard_filename(index, tensor, shard, err);
        if (s) return s;
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, shard) >= sizeof path)
            return tl_fail(err, TL_ERR_INVALID, "%s: shard path too long", index);
        int seen = 0;
        for (size_t i = 0; i < f->n_shards && !seen; i++)
            seen = strcmp(f->shards[i].label, path) == 0;
        if (!seen && (s = add_shard_file(f, path, err))) return s;
    }
    return TL_OK;
}

/* Checks that every weight_map name is a tensor of the shard it names (after finish_file). */
static tl_status check_weight_map(st_file *f, const char *index, json_t *weight_map,
                                  tl_error *err) {
    const char *tensor;
    json_t *value;
    json_object_foreach(weight_map, tensor, value) {
        const st_tensor *t = st_find(f, tensor);
        const char *shard = json_string_value(value);
        const char *actual = t ? f->shards[((const st_entry *)t)->shard].label : "";
        size_t alen = strlen(actual), slen = strlen(shard);
        if (!t || alen < slen + 1 || strcmp(actual + alen - slen, shard) != 0 ||
            actual[alen - slen - 1] != '/')
            return tl_fail(err, TL_ERR_FORMAT, "%s: tensor '%s' is not in shard %s", index, tensor,
                           shard);
    }
    return TL_OK;
}

static tl_status open_index(st_file **out, const char *dir, const char *index, tl_error *err) {
    json_error_t jerr;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return tl_fail(err, TL_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", index, jerr.text,
                       jerr.line);
    json_t *weight_map = json_object_get(root, "weight_map");
    st_file *f = NULL;
    tl_status s = TL_OK;
    if (!json_is_object(weight_map))
        s = tl_fail(err, TL_ERR_FORMAT, "%s: weight_map is missing or not an object", index);
    if (!s) s = new_file(&f, err);
    if (!s) s = open_index_shards(f, dir, index, weight_map, err);
    if (!s) s = finish_file(f, err);
    if (!s) s = check_weight_map(f, index, weight_map, err);
    json_decref(root);
    return hand_over(out, f, s);
}

tl_status st_open_dir(st_file **out, const char *dir, tl_error *err) {
    char path[4096];
    *out = NULL;
    if ((size_t)snprintf(path, sizeof path, "%s/" ST_SINGLE_NAME, dir) >= sizeof path)
        return tl_fail(err, TL_ERR_INVALID, "%s: directory path too long", dir);
    if (access(path, F_OK) == 0) return st_open(out, path, err);
    snprintf(path, sizeof path, "%s/" ST_INDEX_NAME, dir);
    if (access(path, F_OK) == 0) return open_index(out, dir, path, err);
    return tl_fail(err, TL_ERR_NOT_FOUND,
                   "%s: neither " ST_SINGLE_NAME " nor " ST_INDEX_NAME " exists", dir);
}

/* ---- lookup ---- */

size_t st_count(const st_file *f) {
    return f->count;
}

const st_tensor *st_at(const st_file *f, size_t i) {
    return i < f->count ? &f->entries[i].tensor : NULL;
}

static int compare_name_key(const void *key, const void *elem) {
    return strcmp(key, (*(st_entry *const *)elem)->tensor.name);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    st_entry **hit = bsearch(name, f->by_name, f->count, sizeof *f->by_name, compare_name_key);
    return hit ? &(*hit)->tensor : NULL;
}

static tl_status check_shape(const st_tensor *t, int ndim, const int64_t *shape, tl_error *err) {
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (same) return TL_OK;
    char have[160], want[160];
    return tl_fail(err, TL_ERR_FORMAT, "tensor '%s': shape %s expected %s", t->name,
                   format_shape(have, sizeof have, t->ndim, t->shape),
                   format_shape(want, sizeof want, ndim, shape));
}

tl_status st_get_f32(st_file *f, const char *name, int ndim, const int64_t *shape,
                     const float **out, tl_error *err) {
    *out = NULL;
    const st_tensor *t = st_find(f, name);
    if (!t) return tl_fail(err, TL_ERR_NOT_FOUND, "tensor '%s' not found", name);
    tl_status s = check_shape(t, ndim, shape, err);
    if (s) return s;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return tl_fail(err, TL_ERR_UNSUPPORTED, "tensor '%s': dtype %s is not a float type", name,
                       st_dtype_name(t->dtype));
    if (t->dtype == ST_F32 && (uintptr_t)t->data % _Alignof(float) == 0) {
        *out = t->data;
        return TL_OK;
    }
    st_entry *e = (st_entry *)t; /* tensor is the first member of its entry */
    if (!e->f32) {
        int64_t n = st_numel(t);
        e->f32 = malloc(n > 0 ? (size_t)n * sizeof(float) : 1);
        if (!e->f32) return tl_fail(err, TL_ERR_NOMEM, "tensor '%s': out of memory", name);
        st_to_f32(t, e->f32);
    }
    *out = e->f32;
    return TL_OK;
}

/* ---- writing ---- */

static int compare_tensor_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

static tl_status check_write_tensor(const char *path, const st_tensor *t, tl_error *err) {
    if (!t->name || !*t->name || strcmp(t->name, "__metadata__") == 0)
        return tl_fail(err, TL_ERR_INVALID, "%s: tensor name '%s' is not allowed", path,
                       t->name ? t->name : "(null)");
    if ((unsigned)t->dtype >= ST_N_DTYPES || t->ndim < 0 || t->ndim > ST_MAX_DIMS)
        return tl_fail(err, TL_ERR_INVALID, "%s: tensor '%s': bad dtype or ndim", path, t->name);
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[i], &n))
            return tl_fail(err, TL_ERR_INVALID, "%s: tensor '%s': bad shape", path, t->name);
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)st_dtype_size(t->dtype), &bytes) || bytes != t->nbytes)
        return tl_fail(err, TL_ERR_INVALID,
                       "%s: tensor '%s': nbytes %zu does not match %s of %" PRIu64 " elements",
                       path, t->name, t->nbytes, st_dtype_name(t->dtype), n);
    if (t->nbytes && !t->data)
        return tl_fail(err, TL_ERR_INVALID, "%s: tensor '%s': no data", path, t->name);
    return TL_OK;
}

static tl_status check_write_tensors(const char *path, const st_tensor *tensors, size_t n,
                                     tl_error *err) {
    for (size_t i = 0; i < n; i++) {
        tl_status s = check_write_tensor(path, &tensors[i], err);
        if (s) return s;
    }
    const st_tensor **order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < n; i++) order[i] = &tensors[i];
    qsort(order, n, sizeof *order, compare_tensor_name);
    tl_status s = TL_OK;
    for (size_t i = 1; i < n && !s; i++) {
        if (strcmp(order[i - 1]->name, order[i]->name) == 0)
            s = tl_fail(err, TL_ERR_INVALID, "%s: tensor name '%s' is repeated", path,
                        order[i]->name);
    }
    free(order);
    return s;
}

static tl_status add_write_metadata(json_t *root, const char *path, const char *metadata_json,
                                    tl_error *err) {
    if (!metadata_json) return TL_OK;
    json_error_t jerr;
    json_t *meta = json_loads(metadata_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!meta)
        return tl_fail(err, TL_ERR_INVALID, "%s: metadata is not valid JSON: %s", path, jerr.text);
    tl_status s = check_metadata(path, meta, TL_ERR_INVALID, err);
    if (s) {
        json_decref(meta);
        return s;
    }
    json_object_set_new(root, "__metadata__", meta);
    return TL_OK;
}

static json_t *tensor_header_entry(const st_tensor *t, size_t begin) {
    json_t *shape = json_array();
    for (int i = 0; i < t->ndim; i++) json_array_append_new(shape, json_integer(t->shape[i]));
    return json_pack("{s:s, s:o, s:[I,I]}", "dtype", st_dtype_name(t->dtype), "shape", shape,
                     "data_offsets", (json_int_t)begin, (json_int_t)(begin + t->nbytes));
}

/* Builds the header JSON padded with spaces so that 8 + length is a multiple of 8.
 * *out is malloc'ed, owned by the caller. */
static tl_status build_header(const char *path, const st_tensor *tensors, size_t n,
                              const char *metadata_json, char **out, size_t *out_len,
                              tl_error *err) {
    json_t *root = json_object();
    tl_status s = root ? add_write_metadata(root, path, metadata_json, err)
                       : tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    size_t offset = 0;
    for (size_t i = 0; i < n && !s; i++) {
        json_t *entry = tensor_header_entry(&tensors[i], offset);
        if (!entry || json_object_set_new(root, tensors[i].name, entry) != 0)
            s = tl_fail(err, TL_ERR_INVALID, "%s: tensor '%s' cannot go in the header (bad UTF-8?)",
                        path, tensors[i].name);
        offset += tensors[i].nbytes;
    }
    char *text = s ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s) return s;
    if (!text) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t len = strlen(text), padded = (len + 7) & ~(size_t)7;
    char *buf = realloc(text, padded + 1);
    if (!buf) {
        free(text);
        return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    }
    memset(buf + len, ' ', padded - len);
    *out = buf;
    *out_len = padded;
    return TL_OK;
}

static tl_status write_all(int fd, const char *path, const void *bytes, size_t len, tl_error *err) {
    const unsigned char *p = bytes;
    while (len > 0) {
        ssize_t w = write(fd, p, len > (1u << 30) ? (1u << 30) : len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return tl_fail(err, TL_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += w;
        len -= (size_t)w;
    }
    return TL_OK;
}

static tl_status write_contents(int fd, const char *path, const char *header, size_t header_len,
                                const st_tensor *tensors, size_t n, tl_error *err) {
    unsigned char length_bytes[8];
    uint64_t hl = header_len;
    memcpy(length_bytes, &hl, sizeof length_bytes);
    tl_status s = write_all(fd, path, length_bytes, sizeof length_bytes, err);
    if (!s) s = write_all(fd, path, header, header_len, err);
    for (size_t i = 0; i < n && !s; i++)
        s = write_all(fd, path, tensors[i].data, tensors[i].nbytes, err);
    if (!s && fchmod(fd, 0644) != 0)
        s = tl_fail(err, TL_ERR_IO, "%s: chmod failed: %s", path, strerror(errno));
    if (!s && fsync(fd) != 0)
        s = tl_fail(err, TL_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    return s;
}

static tl_status fsync_parent_dir(const char *path, tl_error *err) {
    char *copy = strdup(path);
    if (!copy) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    tl_status s = TL_OK;
    if (fd < 0 || fsync(fd) != 0)
        s = tl_fail(err, TL_ERR_IO, "%s: cannot sync its directory: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return s;
}

tl_status st_write(const char *path, const st_tensor *tensors, size_t n, const char *metadata_json,
                   tl_error *err) {
    char *header = NULL, temp[4096];
    size_t header_len = 0;
    tl_status s = check_write_tensors(path, tensors, n, err);
    if (!s) s = build_header(path, tensors, n, metadata_json, &header, &header_len, err);
    if (s) return s;
    if ((size_t)snprintf(temp, sizeof temp, "%s.tmp.XXXXXX", path) >= sizeof temp) {
        free(header);
        return tl_fail(err, TL_ERR_INVALID, "%s: path too long", path);
    }
    int fd = mkostemp(temp, O_CLOEXEC);
    if (fd < 0) {
        free(header);
        return tl_fail(err, TL_ERR_IO, "%s: cannot create a temporary file: %s", path,
                       strerror(errno));
    }
    s = write_contents(fd, temp, header, header_len, tensors, n, err);
    free(header);
    if (close(fd) != 0 && !s)
        s = tl_fail(err, TL_ERR_IO, "%s: close failed: %s", temp, strerror(errno));
    if (!s && rename(temp, path) != 0)
        s = tl_fail(err, TL_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (s) {
        unlink(temp);
        return s;
    }
    return fsync_parent_dir(path, err);
}
