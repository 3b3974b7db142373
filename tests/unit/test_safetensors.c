/* Tests for model/safetensors.c: the clip-tiny reference file, write/read round trips, float
 * conversions, sharded directories, and one test per kind of malformed input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "safetensors.h"
#include "test_util.h"

/* ---- helpers ---- */

/* Checks that s failed with `code` and a message containing `needle`. */
#define CHECK_FAILS(s, err, want_code, needle)                                                     \
    do {                                                                                           \
        CHECKF((s) == (want_code), "status %s, want %s (%s)", tl_status_name(s),                   \
               tl_status_name(want_code), (err).message);                                          \
        CHECKF(strstr((err).message, (needle)) != NULL, "message '%s' lacks '%s'", (err).message,  \
               (needle));                                                                          \
    } while (0)

/* A safetensors image: 8-byte length, header (unpadded), data_len zero bytes. Caller frees. */
static unsigned char *make_bytes(uint64_t header_len_field, const char *header, size_t data_len,
                                 size_t *len) {
    size_t hl = strlen(header);
    *len = 8 + hl + data_len;
    unsigned char *b = calloc(1, *len);
    memcpy(b, &header_len_field, 8);
    memcpy(b + 8, header, hl);
    return b;
}

/* Opens header + data_len zero bytes from memory; returns the status, closes any file. */
static tl_status open_header(const char *header, size_t data_len, tl_error *err) {
    size_t len;
    unsigned char *b = make_bytes(strlen(header), header, data_len, &len);
    st_file *f = NULL;
    tl_status s = st_open_memory(&f, b, len, err);
    st_close(f);
    free(b);
    return s;
}

static char temp_dir[256];

static const char *temp_path(const char *name) {
    static char path[300];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

static void write_text(const char *name, const char *text) {
    tu_write_text(temp_path(name), text);
}

static st_tensor make_tensor(const char *name, st_dtype dt, int ndim, const int64_t *shape,
                             const void *data) {
    st_tensor t = {.name = name, .dtype = dt, .ndim = ndim, .data = data};
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= t.shape[i] = shape[i];
    t.nbytes = (size_t)n * st_dtype_size(dt);
    return t;
}

/* ---- the reference file ---- */

TEST(clip_tiny_shapes) {
    char path[1024];
    tl_error err = {0};
    st_file *f = NULL;
    snprintf(path, sizeof path, "%s/clip-tiny/model.safetensors", th_testdata());
    REQUIRE(st_open(&f, path, &err) == TL_OK);
    CHECK(st_count(f) == 78);
    const st_tensor *tok = st_find(f, "text_model.embeddings.token_embedding.weight");
    REQUIRE(tok);
    CHECK(tok->dtype == ST_F32 && tok->ndim == 2 && tok->shape[0] == 49408 && tok->shape[1] == 64);
    const st_tensor *patch = st_find(f, "vision_model.embeddings.patch_embedding.weight");
    REQUIRE(patch);
    CHECK(patch->ndim == 4 && patch->shape[0] == 64 && patch->shape[1] == 3 &&
          patch->shape[2] == 16 && patch->shape[3] == 16);
    CHECK(st_find(f, "no.such.tensor") == NULL);
    const float *scale;
    REQUIRE(st_get_f32(f, "logit_scale", 0, NULL, &scale, &err) == TL_OK);
    CHECK_NEAR(expf(*scale), 100.0, 1e-3);
    const float *proj;
    int64_t proj_shape[2] = {32, 64};
    CHECK(st_get_f32(f, "visual_projection.weight", 2, proj_shape, &proj, &err) == TL_OK);
    CHECK(proj == st_find(f, "visual_projection.weight")->data); /* zero-copy */
    st_close(f);

    snprintf(path, sizeof path, "%s/clip-tiny", th_testdata());
    REQUIRE(st_open_dir(&f, path, &err) == TL_OK);
    CHECK(st_count(f) == 78);
    st_close(f);
}

/* ---- round trips ---- */

TEST(round_trip_all_dtypes) {
    static const st_dtype all[] = {ST_BOOL, ST_U8,  ST_I8,  ST_U16, ST_I16, ST_F16, ST_BF16,
                                   ST_U32,  ST_I32, ST_F32, ST_U64, ST_I64, ST_F64};
    enum { N_ALL = sizeof all / sizeof all[0] };
    unsigned char payload[N_ALL][48];
    char names[N_ALL][16];
    st_tensor tensors[N_ALL + 2];
    int64_t shape23[2] = {2, 3}, shape04[2] = {0, 4};
    for (int i = 0; i < N_ALL; i++) {
        for (int j = 0; j < 48; j++) payload[i][j] = (unsigned char)(i * 31 + j * 7 + 1);
        if (all[i] == ST_BOOL)
            for (int j = 0; j < 6; j++) payload[i][j] &= 1;
        snprintf(names[i], sizeof names[i], "t_%s", st_dtype_name(all[i]));
        tensors[i] = make_tensor(names[i], all[i], 2, shape23, payload[i]);
    }
    float scalar = 2.5f;
    tensors[N_ALL] = make_tensor("scalar", ST_F32, 0, NULL, &scalar);
    tensors[N_ALL + 1] = make_tensor("empty", ST_F16, 2, shape04, NULL);
    tl_error err = {0};
    REQUIRE(st_write(temp_path("rt.safetensors"), tensors, N_ALL + 2, "{\"format\": \"pt\"}",
                     &err) == TL_OK);

    st_file *f = NULL;
    REQUIRE(st_open(&f, temp_path("rt.safetensors"), &err) == TL_OK);
    CHECK(st_count(f) == N_ALL + 2);
    for (int i = 0; i < N_ALL + 2; i++) {
        const st_tensor *t = st_find(f, tensors[i].name);
        REQUIRE(t);
        CHECKF(t->dtype == tensors[i].dtype && t->ndim == tensors[i].ndim &&
                   t->nbytes == tensors[i].nbytes,
               "%s", tensors[i].name);
        for (int d = 0; d < t->ndim; d++) CHECK(t->shape[d] == tensors[i].shape[d]);
        if (t->nbytes) CHECKF(memcmp(t->data, tensors[i].data, t->nbytes) == 0, "%s", t->name);
    }
    const float *s;
    CHECK(st_get_f32(f, "scalar", 0, NULL, &s, &err) == TL_OK && *s == 2.5f);
    const float *e;
    CHECK(st_get_f32(f, "empty", 2, shape04, &e, &err) == TL_OK && e != NULL);
    st_close(f);

    FILE *fp = fopen(temp_path("rt.safetensors"), "rb");
    uint64_t header_len = 0;
    REQUIRE(fp && fread(&header_len, 8, 1, fp) == 1);
    fclose(fp);
    CHECKF((8 + header_len) % 8 == 0, "header length %llu", (unsigned long long)header_len);
}

TEST(empty_header_is_valid) {
    size_t len;
    unsigned char *b = make_bytes(8, "{}      ", 0, &len);
    st_file *f = NULL;
    tl_error err = {0};
    CHECKF(st_open_memory(&f, b, len, &err) == TL_OK, "%s", err.message);
    CHECK(f && st_count(f) == 0 && st_find(f, "x") == NULL && st_at(f, 0) == NULL);
    st_close(f);
    free(b);
}

TEST(integer_conversions) {
    int16_t i16[3] = {-32768, -1, 32767};
    uint64_t u64[2] = {UINT64_MAX, 42};
    int64_t shape3[1] = {3}, shape2[1] = {2};
    st_tensor a = make_tensor("a", ST_I16, 1, shape3, i16);
    st_tensor b = make_tensor("b", ST_U64, 1, shape2, u64);
    double d[3];
    int64_t i[3];
    st_to_f64(&a, d);
    CHECK(d[0] == -32768.0 && d[1] == -1.0 && d[2] == 32767.0);
    st_to_i64(&a, i);
    CHECK(i[0] == -32768 && i[1] == -1 && i[2] == 32767);
    st_to_i64(&b, i);
    CHECK(i[0] == INT64_MAX && i[1] == 42);
}

/* Memory image of one tensor with the given dtype and shape [n]; caller frees. */
static unsigned char *one_tensor_file(const char *dtype, const void *data, size_t nbytes,
                                      size_t elements, size_t *len) {
    char header[128];
    snprintf(header, sizeof header,
             "{\"x\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", dtype, elements,
             nbytes);
    size_t hl = (strlen(header) + 7) & ~(size_t)7;
    *len = 8 + hl + nbytes;
    unsigned char *b = malloc(*len);
    uint64_t hl64 = hl;
    memcpy(b, &hl64, 8);
    memset(b + 8, ' ', hl);
    memcpy(b + 8, header, strlen(header));
    memcpy(b + 8 + hl, data, nbytes);
    return b;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Converts `count` 16-bit patterns of dtype through st_get_f32 and compares bit-exactly
 * (NaN: any NaN with the sign kept). */
static void check_half_patterns(const char *dtype, const uint16_t *bits, const uint32_t *want,
                                size_t count) {
    size_t len;
    unsigned char *b = one_tensor_file(dtype, bits, count * 2, count, &len);
    st_file *f = NULL;
    tl_error err = {0};
    const float *out = NULL, *again = NULL;
    int64_t shape[1] = {(int64_t)count};
    if (st_open_memory(&f, b, len, &err) != TL_OK ||
        st_get_f32(f, "x", 1, shape, &out, &err) != TL_OK) {
        CHECKF(0, "%s: %s", dtype, err.message);
    } else {
        for (size_t i = 0; i < count; i++) {
            uint32_t got = float_bits(out[i]);
            int both_nan = isnan(out[i]) && (want[i] & 0x7f800000u) == 0x7f800000u &&
                           (want[i] & 0x7fffffu) && (got >> 31) == (want[i] >> 31);
            CHECKF(got == want[i] || both_nan, "%s 0x%04x -> 0x%08x, want 0x%08x", dtype, bits[i],
                   got, want[i]);
        }
        CHECK(st_get_f32(f, "x", 1, shape, &again, &err) == TL_OK && again == out); /* cached */
    }
    st_close(f);
    free(b);
}

TEST(f16_conversion) {
    /* 1, -2, smallest subnormal 2^-24, largest subnormal, smallest normal 2^-14, 65504,
     * +inf, -inf, NaN, -0, 1/3 rounded */
    static const uint16_t bits[] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff,
                                    0x7c00, 0xfc00, 0x7e00, 0x8000, 0x3555};
    static const uint32_t want[] = {0x3f800000, 0xc0000000, 0x33800000, 0x387fc000,
                                    0x38800000, 0x477fe000, 0x7f800000, 0xff800000,
                                    0x7fc00000, 0x80000000, 0x3eaaa000};
    check_half_patterns("F16", bits, want, sizeof bits / sizeof bits[0]);
}

TEST(bf16_conversion) {
    /* 1, pi rounded, -inf, NaN, smallest subnormal, -0 */
    static const uint16_t bits[] = {0x3f80, 0x4049, 0xff80, 0x7fc0, 0x0001, 0x8000};
    static const uint32_t want[] = {0x3f800000, 0x40490000, 0xff800000,
                                    0x7fc00000, 0x00010000, 0x80000000};
    check_half_patterns("BF16", bits, want, sizeof bits / sizeof bits[0]);
}

/* Opens the one-tensor file bytes[len] and checks tensor "x" read as F32 against want[3]; with
 * copied, that the values are a converted copy rather than a view of the bytes. */
static void check_three_f32(const unsigned char *bytes, size_t len, const float want[3],
                            int copied) {
    st_file *f = NULL;
    tl_error err = {0};
    const float *out;
    int64_t shape[1] = {3};
    REQUIRE(st_open_memory(&f, bytes, len, &err) == TL_OK);
    tl_status st = st_get_f32(f, "x", 1, shape, &out, &err);
    CHECKF(st == TL_OK, "%s", err.message);
    if (st == TL_OK) {
        CHECK(!copied || out != st_find(f, "x")->data);
        CHECK(out[0] == want[0] && out[1] == want[1] && out[2] == want[2]);
    }
    st_close(f);
}

TEST(f64_and_unaligned_f32_conversion) {
    double d[3] = {1.5, -0.25, 1e300};
    size_t len;
    unsigned char *b = one_tensor_file("F64", d, sizeof d, 3, &len);
    check_three_f32(b, len, (const float[3]){1.5f, -0.25f, INFINITY}, 0);
    free(b);

    float v[3] = {1.0f, -2.0f, 3.5f};
    b = one_tensor_file("F32", v, sizeof v, 3, &len);
    unsigned char *shifted = malloc(len + 1);
    if (shifted) {
        memcpy(shifted + 1, b, len); /* data now starts at an odd address */
        check_three_f32(shifted + 1, len, v, 1);
    }
    CHECK(shifted != NULL);
    free(shifted);
    free(b);
}

/* ---- sharded directories ---- */

static float shard_a[4] = {1, 2, 3, 4}, shard_b[2] = {5, 6}, shard_c[3] = {7, 8, 9};

static void write_two_shards(void) {
    int64_t s4[1] = {4}, s2[1] = {2}, s3[1] = {3};
    st_tensor part1[2] = {make_tensor("a", ST_F32, 1, s4, shard_a),
                          make_tensor("b", ST_F32, 1, s2, shard_b)};
    st_tensor part2[1] = {make_tensor("c", ST_F32, 1, s3, shard_c)};
    tl_error err = {0};
    CHECK(st_write(temp_path("part-1.safetensors"), part1, 2, NULL, &err) == TL_OK);
    CHECK(st_write(temp_path("part-2.safetensors"), part2, 1, NULL, &err) == TL_OK);
}

static tl_status open_with_index(const char *index_json, tl_error *err) {
    write_text("model.safetensors.index.json", index_json);
    st_file *f = NULL;
    tl_status s = st_open_dir(&f, temp_dir, err);
    st_close(f);
    return s;
}

TEST(sharded_round_trip) {
    write_two_shards();
    write_text("model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 36}, \"weight_map\": {\"a\": "
               "\"part-1.safetensors\", \"b\": \"part-1.safetensors\", \"c\": "
               "\"part-2.safetensors\"}}");
    st_file *f = NULL;
    tl_error err = {0};
    REQUIRE(st_open_dir(&f, temp_dir, &err) == TL_OK);
    CHECK(st_count(f) == 3);
    const float *c;
    int64_t s3[1] = {3};
    CHECK(st_get_f32(f, "c", 1, s3, &c, &err) == TL_OK && c[0] == 7 && c[2] == 9);
    const st_tensor *a = st_find(f, "a");
    CHECK(a && memcmp(a->data, shard_a, sizeof shard_a) == 0);
    st_close(f);
}

TEST(sharded_missing_shard) {
    write_two_shards();
    tl_error err = {0};
    tl_status s = open_with_index("{\"weight_map\": {\"a\": \"part-9.safetensors\"}}", &err);
    CHECK_FAILS(s, err, TL_ERR_NOT_FOUND, "part-9.safetensors");
}

TEST(sharded_name_not_in_shard) {
    write_two_shards();
    tl_error err = {0};
    tl_status s = open_with_index(
        "{\"weight_map\": {\"a\": \"part-1.safetensors\", \"c\": \"part-1.safetensors\"}}", &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "'c' is not in shard part-1.safetensors");
}

TEST(sharded_path_traversal) {
    write_two_shards();
    tl_error err = {0};
    tl_status s = open_with_index("{\"weight_map\": {\"a\": \"../part-1.safetensors\"}}", &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "not allowed");
    s = open_with_index("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "not allowed");
}

TEST(sharded_duplicate_across_shards) {
    int64_t s2[1] = {2};
    st_tensor again = make_tensor("a", ST_F32, 1, s2, shard_b);
    tl_error err = {0};
    write_two_shards();
    REQUIRE(st_write(temp_path("part-2.safetensors"), &again, 1, NULL, &err) == TL_OK);
    tl_status s = open_with_index(
        "{\"weight_map\": {\"a\": \"part-1.safetensors\", \"b\": \"part-2.safetensors\"}}", &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "'a' appears in both");
}

TEST(sharded_bad_index) {
    write_two_shards();
    tl_error err = {0};
    CHECK_FAILS(open_with_index("{\"weight_map\": ", &err), err, TL_ERR_FORMAT, "not valid JSON");
    CHECK_FAILS(open_with_index("{\"metadata\": {}}", &err), err, TL_ERR_FORMAT,
                "weight_map is missing");
    CHECK_FAILS(open_with_index("{\"weight_map\": {\"a\": 3}}", &err), err, TL_ERR_FORMAT,
                "weight_map value for 'a' is not a string");
    unlink(temp_path("model.safetensors.index.json"));
    st_file *f = NULL;
    tl_status s = st_open_dir(&f, temp_dir, &err);
    CHECK_FAILS(s, err, TL_ERR_NOT_FOUND, "neither model.safetensors nor");
    CHECK(f == NULL);
}

/* ---- malformed input, one case each ---- */

TEST(bad_zero_byte_file) {
    write_text("empty.safetensors", "");
    st_file *f = NULL;
    tl_error err = {0};
    tl_status s = st_open(&f, temp_path("empty.safetensors"), &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "too short");
    CHECK(f == NULL);
    s = st_open_memory(&f, "", 0, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "too short");
}

TEST(bad_truncated_header_length) {
    st_file *f = NULL;
    tl_error err = {0};
    tl_status s = st_open_memory(&f, "\x10\x00\x00\x00\x00", 5, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "too short for the 8-byte header length");
}

TEST(bad_header_length_past_eof) {
    size_t len;
    unsigned char *b = make_bytes(1000, "{}", 0, &len);
    st_file *f = NULL;
    tl_error err = {0};
    tl_status s = st_open_memory(&f, b, len, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "runs past the end");
    free(b);
}

TEST(bad_header_length_over_limit) {
    size_t len;
    unsigned char *b = make_bytes((uint64_t)ST_MAX_HEADER_BYTES + 1, "{}", 0, &len);
    st_file *f = NULL;
    tl_error err = {0};
    tl_status s = st_open_memory(&f, b, len, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "exceeds the limit");
    free(b);
}

TEST(bad_non_json_header) {
    tl_error err = {0};
    CHECK_FAILS(open_header("{not json", 0, &err), err, TL_ERR_FORMAT, "not valid JSON");
    CHECK_FAILS(open_header("[1, 2]", 0, &err), err, TL_ERR_FORMAT, "not a JSON object");
    CHECK_FAILS(open_header("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                            "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                            2, &err),
                err, TL_ERR_FORMAT, "duplicate");
    CHECK_FAILS(open_header("{\"__metadata__\": {\"n\": 3}}", 0, &err), err, TL_ERR_FORMAT,
                "__metadata__ value 'n' is not a string");
}

TEST(bad_offsets_outside_file) {
    tl_error err = {0};
    tl_status s =
        open_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "tensor 'w': data_offsets [8, 24] outside");
    s = open_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "outside the data section");
}

TEST(bad_overlapping_tensors) {
    tl_error err = {0};
    tl_status s = open_header("{\"p\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"q\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                              16, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "'p' and 'q' overlap");
}

TEST(bad_byte_length_mismatch) {
    tl_error err = {0};
    tl_status s =
        open_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT,
                "tensor 'w': F32 [3] needs 12 bytes but data_offsets span 8");
}

TEST(bad_unknown_dtype) {
    tl_error err = {0};
    tl_status s =
        open_header("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", 16, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "tensor 'w': unknown dtype 'F128'");
}

TEST(bad_negative_dims) {
    tl_error err = {0};
    tl_status s =
        open_header("{\"w\":{\"dtype\":\"U8\",\"shape\":[2,-1],\"data_offsets\":[0,0]}}", 0, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "tensor 'w': shape dim 1 is not a non-negative integer");
    s = open_header(
        "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "shape has 9 dims");
}

TEST(bad_shape_overflow) {
    tl_error err = {0};
    tl_status s = open_header("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                              "\"data_offsets\":[0,0]}}",
                              0, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "tensor 'w': shape overflows");
    s = open_header("{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                    "\"data_offsets\":[0,0]}}",
                    0, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "tensor 'w': shape overflows");
}

TEST(bad_truncated_file) {
    float v[4] = {1, 2, 3, 4};
    size_t len;
    unsigned char *b = one_tensor_file("F32", v, sizeof v, 4, &len);
    st_file *f = NULL;
    tl_error err = {0};
    tl_status s = st_open_memory(&f, b, len - 3, &err);
    CHECK_FAILS(s, err, TL_ERR_FORMAT, "tensor 'x': data_offsets [0, 16] outside");
    CHECK(f == NULL);
    free(b);
}

/* ---- st_get_f32 contract ---- */

/* Writes and opens a file with F32 "w" [2,3] and I32 "ids" [2]; NULL on failure. */
static st_file *open_w_and_ids(void) {
    static float w[6] = {0};
    static int32_t ids[2] = {0};
    int64_t s23[2] = {2, 3}, s2[1] = {2};
    st_tensor ts[2] = {make_tensor("w", ST_F32, 2, s23, w), make_tensor("ids", ST_I32, 1, s2, ids)};
    tl_error err = {0};
    st_file *f = NULL;
    if (st_write(temp_path("rt.safetensors"), ts, 2, NULL, &err) == TL_OK)
        st_open(&f, temp_path("rt.safetensors"), &err);
    return f;
}

TEST(get_f32_missing_tensor) {
    st_file *f = open_w_and_ids();
    REQUIRE(f);
    const float *out = (const float *)1;
    tl_error err = {0};
    int64_t s[1] = {1};
    tl_status st = st_get_f32(f, "absent.weight", 1, s, &out, &err);
    CHECK_FAILS(st, err, TL_ERR_NOT_FOUND, "tensor 'absent.weight' not found");
    CHECK(out == NULL);
    st_close(f);
}

TEST(get_f32_wrong_shape) {
    st_file *f = open_w_and_ids();
    REQUIRE(f);
    const float *out;
    tl_error err = {0};
    int64_t s32[2] = {3, 2};
    tl_status st = st_get_f32(f, "w", 2, s32, &out, &err);
    CHECK_FAILS(st, err, TL_ERR_FORMAT, "tensor 'w': shape [2,3] expected [3,2]");
    st = st_get_f32(f, "w", 1, s32, &out, &err);
    CHECK_FAILS(st, err, TL_ERR_FORMAT, "shape [2,3] expected [3]");
    st_close(f);
}

TEST(get_f32_non_float_dtype) {
    st_file *f = open_w_and_ids();
    REQUIRE(f);
    const float *out;
    tl_error err = {0};
    int64_t s2[1] = {2};
    tl_status st = st_get_f32(f, "ids", 1, s2, &out, &err);
    CHECK_FAILS(st, err, TL_ERR_UNSUPPORTED, "tensor 'ids': dtype I32 is not a float type");
    st_close(f);
}

/* ---- writer validation ---- */

TEST(write_rejects_bad_tensors) {
    float v[2] = {1, 2};
    int64_t s2[1] = {2};
    st_tensor dup[2] = {make_tensor("a", ST_F32, 1, s2, v), make_tensor("a", ST_F32, 1, s2, v)};
    tl_error err = {0};
    tl_status s = st_write(temp_path("rt.safetensors"), dup, 2, NULL, &err);
    CHECK_FAILS(s, err, TL_ERR_INVALID, "'a' is repeated");
    st_tensor bad = make_tensor("b", ST_F32, 1, s2, v);
    bad.nbytes = 7;
    s = st_write(temp_path("rt.safetensors"), &bad, 1, NULL, &err);
    CHECK_FAILS(s, err, TL_ERR_INVALID, "nbytes 7 does not match F32 of 2 elements");
    s = st_write(temp_path("rt.safetensors"), dup, 1, "{\"k\": 1}", &err);
    CHECK_FAILS(s, err, TL_ERR_INVALID, "__metadata__ value 'k' is not a string");
    s = st_write("/nonexistent-dir/x.safetensors", dup, 1, NULL, &err);
    CHECK_FAILS(s, err, TL_ERR_IO, "/nonexistent-dir/x.safetensors");
}

int main(void) {
    if (tu_make_temp_dir(temp_dir, sizeof temp_dir, "test_safetensors")) {
        perror("mkdtemp");
        return 1;
    }
    RUN(clip_tiny_shapes);
    RUN(round_trip_all_dtypes);
    RUN(empty_header_is_valid);
    RUN(integer_conversions);
    RUN(f16_conversion);
    RUN(bf16_conversion);
    RUN(f64_and_unaligned_f32_conversion);
    RUN(sharded_round_trip);
    RUN(sharded_missing_shard);
    RUN(sharded_name_not_in_shard);
    RUN(sharded_path_traversal);
    RUN(sharded_duplicate_across_shards);
    RUN(sharded_bad_index);
    RUN(bad_zero_byte_file);
    RUN(bad_truncated_header_length);
    RUN(bad_header_length_past_eof);
    RUN(bad_header_length_over_limit);
    RUN(bad_non_json_header);
    RUN(bad_offsets_outside_file);
    RUN(bad_overlapping_tensors);
    RUN(bad_byte_length_mismatch);
    RUN(bad_unknown_dtype);
    RUN(bad_negative_dims);
    RUN(bad_shape_overflow);
    RUN(bad_truncated_file);
    RUN(get_f32_missing_tensor);
    RUN(get_f32_wrong_shape);
    RUN(get_f32_non_float_dtype);
    RUN(write_rejects_bad_tensors);
    tu_remove_tree(temp_dir);
    return th_done();
}
