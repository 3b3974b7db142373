/* Tests of the public session API (model/session.c): tailor-tiny's trained NTM through
 * tl_session_turn_vec against the reference q_t, bit-for-bit continuation after serialise and
 * restore, batches of turns equal to single turns, rejected bytes, clip-tiny's decayed-sum
 * fallback on real images and texts, and a checkpoint whose NTM lacks one tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "safetensors.h"
#include "tailor_model.h"

#define TOL         1e-4
#define MISSING_NTM "ntm.blocks.1.read.bias"
#define SHOWN_LIMIT 1048576u /* proto/session.md */
#define MAX_P       512      /* the test models' widths fit fixed buffers */

static char tailor_dir[1024], clip_dir[1024];

/* tailor-tiny's ntm_x [T, B, P] and expected ntm.q [T, B, P] (float64), read once. */
static struct {
    int T, B, P;
    float *x;
    double *q;
    double scale; /* ntm.scale */
} ref;

static int load_ref(void) {
    char path[1200];
    tl_error err;
    st_file *in = NULL, *ex = NULL, *model = NULL;
    snprintf(path, sizeof path, "%s/inputs.safetensors", tailor_dir);
    int ok = st_open(&in, path, &err) == TL_OK;
    snprintf(path, sizeof path, "%s/expected.safetensors", tailor_dir);
    ok = ok && st_open(&ex, path, &err) == TL_OK;
    snprintf(path, sizeof path, "%s/model.safetensors", tailor_dir);
    ok = ok && st_open(&model, path, &err) == TL_OK;
    const st_tensor *x = ok ? st_find(in, "ntm_x") : NULL, *q = ok ? st_find(ex, "ntm.q") : NULL;
    const st_tensor *scale = ok ? st_find(model, "ntm.scale") : NULL;
    ok = x && q && scale && x->ndim == 3 && st_numel(x) == st_numel(q);
    if (ok) {
        ref.T = (int)x->shape[0], ref.B = (int)x->shape[1], ref.P = (int)x->shape[2];
        ref.x = malloc((size_t)st_numel(x) * sizeof *ref.x);
        ref.q = malloc((size_t)st_numel(q) * sizeof *ref.q);
        ok = ref.x && ref.q;
    }
    if (ok) {
        st_to_f32(x, ref.x);
        st_to_f64(q, ref.q);
        st_to_f64(scale, &ref.scale);
    }
    st_close(in);
    st_close(ex);
    st_close(model);
    return ok;
}

static const float *ref_x(int t, int b) {
    return ref.x + ((size_t)t * ref.B + b) * ref.P;
}

static double max_abs_diff(const float *got, const double *want, int n) {
    double worst = 0.0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - want[i]));
    return worst;
}

static double norm(const float *v, int n) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

/* ---- tailor-tiny: the trained NTM ---- */

TEST(tiny_has_the_ntm_capability) {
    tl_model *m = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    CHECKF(tl_model_capabilities(m) & TL_CAP_NTM, "caps %#x", tl_model_capabilities(m));
    CHECK(!strcmp(tl_capability_name(TL_CAP_NTM), "ntm"));
    CHECK(!strcmp(tl_capability_name(TL_CAP_TGIR), "tgir"));
    CHECK(tl_capability_name(TL_CAP_NTM | TL_CAP_XMR) == NULL);
    tl_model_close(m);
}

/* q_t = σ_ntm · n(o^C_t): the reference within TOL, with norm σ_ntm. */
TEST(tiny_turns_match_the_reference) {
    tl_model *m = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    REQUIRE(tl_model_get_info(m)->projection_dim == ref.P && ref.P <= MAX_P);
    float q[MAX_P];
    for (int b = 0; b < ref.B; b++) {
        tl_session *s = NULL;
        REQUIRE(tl_session_create(m, NULL, &s, &err) == TL_OK);
        CHECK(tl_session_turn_count(s) == 0 && norm(tl_session_query(s), ref.P) == 0.0);
        for (int t = 0; t < ref.T; t++) {
            CHECKF(tl_session_turn_vec(m, s, ref_x(t, b), q, &err) == TL_OK, "%s", err.message);
            double worst = max_abs_diff(q, ref.q + ((size_t)t * ref.B + b) * ref.P, ref.P);
            CHECKF(worst <= TOL, "transaction %d turn %d: max abs error %.3g", b, t, worst);
            CHECK_NEAR(norm(q, ref.P), ref.scale, 1e-4);
            CHECK(!memcmp(q, tl_session_query(s), (size_t)ref.P * sizeof *q));
        }
        CHECK(tl_session_turn_count(s) == (uint64_t)ref.T);
        tl_session_free(s);
    }
    tl_model_close(m);
}

/* Runs turns [first, last) of transaction b on s, the last q into q. */
static int run_turns(tl_model *m, tl_session *s, int b, int first, int last, float *q) {
    tl_error err;
    for (int t = first; t < last; t++)
        if (tl_session_turn_vec(m, s, ref_x(t, b), q, &err) != TL_OK) return 0;
    return 1;
}

TEST(restored_session_continues_bit_for_bit) {
    tl_model *m = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    REQUIRE(ref.T == 3 && ref.P <= MAX_P);
    float q_whole[MAX_P] = {0}, q_split[MAX_P] = {0};
    tl_session *whole = NULL, *split = NULL, *back = NULL;
    tl_session_opts opts = {.expires_at = 1900000000};
    REQUIRE(tl_session_create(m, NULL, &whole, &err) == TL_OK);
    REQUIRE(tl_session_create(m, &opts, &split, &err) == TL_OK);
    CHECK(run_turns(m, whole, 1, 0, 3, q_whole));
    CHECK(run_turns(m, split, 1, 0, 2, q_split));
    const uint64_t shown[] = {42, 7, 1u << 31};
    CHECK(tl_session_add_shown(split, shown, 3, &err) == TL_OK);
    uint8_t *bytes = NULL;
    size_t len = 0;
    REQUIRE(tl_session_serialize(m, split, &bytes, &len, &err) == TL_OK);
    tl_session_free(split);
    CHECKF(tl_session_restore(m, bytes, len, &back, &err) == TL_OK, "%s", err.message);
    if (back) {
        CHECK(tl_session_turn_count(back) == 2 && tl_session_expiry(back) == 1900000000);
        const uint64_t *ids = NULL;
        CHECK(tl_session_shown(back, &ids) == 3 && !memcmp(ids, shown, sizeof shown));
        CHECK(run_turns(m, back, 1, 2, 3, q_split));
        CHECK(!memcmp(q_whole, q_split, (size_t)ref.P * sizeof *q_split));
        CHECK(tl_session_turn_count(back) == 3);
    }
    free(bytes);
    tl_session_free(whole);
    tl_session_free(back);
    tl_model_close(m);
}

TEST(shown_ids_and_expiry) {
    tl_model *m = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    tl_session *s = NULL;
    REQUIRE(tl_session_create(m, NULL, &s, &err) == TL_OK);
    CHECK(tl_session_expiry(s) == 0);
    tl_session_set_expiry(s, 12345);
    CHECK(tl_session_expiry(s) == 12345);
    uint64_t ids[40];
    for (int i = 0; i < 40; i++) ids[i] = 1000 + (uint64_t)i;
    for (int i = 0; i < 40; i += 8) CHECK(tl_session_add_shown(s, ids + i, 8, &err) == TL_OK);
    const uint64_t *got = NULL;
    CHECK(tl_session_shown(s, &got) == 40 && !memcmp(got, ids, sizeof ids));
    CHECK(tl_session_add_shown(s, ids, SHOWN_LIMIT, &err) == TL_ERR_LIMIT);
    CHECKF(strstr(err.message, "limit"), "%s", err.message);
    CHECK(tl_session_shown(s, &got) == 40);
    tl_session_free(s);
    tl_model_close(m);
}

/* ---- batches of turns ---- */

/* n sessions of m with different histories: session i has taken i % T turns of tailor-tiny's
 * transaction i % B (its x also serve clip-tiny's fallback: both are 32 wide). */
static tl_session **sessions_with_histories(tl_model *m, int n) {
    tl_session **s = calloc((size_t)n, sizeof *s);
    tl_error err;
    float q[MAX_P];
    for (int i = 0; s && i < n; i++) {
        CHECK(tl_session_create(m, NULL, &s[i], &err) == TL_OK);
        CHECK(s[i] && run_turns(m, s[i], i % ref.B, 0, i % ref.T, q));
    }
    return s;
}

static void free_sessions(tl_session **s, int n) {
    for (int i = 0; s && i < n; i++) tl_session_free(s[i]);
    free(s);
}

/* Copies of s[0..n) made by serialise and restore. */
static tl_session **restored_copies(tl_model *m, tl_session **s, int n) {
    tl_session **copy = calloc((size_t)n, sizeof *copy);
    tl_error err;
    for (int i = 0; copy && i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        CHECK(tl_session_serialize(m, s[i], &bytes, &len, &err) == TL_OK);
        CHECKF(tl_session_restore(m, bytes, len, &copy[i], &err) == TL_OK, "%s", err.message);
        free(bytes);
    }
    return copy;
}

/* Whether a and b serialise to the same bytes (state, turn count, shown ids, expiry). */
static int same_bytes(tl_model *m, const tl_session *a, const tl_session *b) {
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    tl_error err;
    int same = a && b && !tl_session_serialize(m, a, &x, &nx, &err) &&
               !tl_session_serialize(m, b, &y, &ny, &err) && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* One tl_session_turn_vec_batch over restored copies of n sessions equals tl_session_turn_vec
 * on each original alone: queries and new states bit for bit. */
static void check_batch_equals_single(tl_model *m, int n) {
    int P = tl_model_get_info(m)->projection_dim;
    tl_session **alone = sessions_with_histories(m, n), **batched = restored_copies(m, alone, n);
    float *x = malloc((size_t)n * P * sizeof *x), *q_batch = malloc((size_t)n * P * sizeof *x);
    float *q_alone = malloc((size_t)n * P * sizeof *x);
    tl_error err;
    REQUIRE(alone && batched && x && q_batch && q_alone && P == ref.P);
    for (int i = 0; i < n; i++)
        memcpy(x + (size_t)i * P, ref_x(i % ref.T, (i + 1) % ref.B), (size_t)P * sizeof *x);
    CHECKF(tl_session_turn_vec_batch(m, batched, x, n, q_batch, &err) == TL_OK, "%s", err.message);
    int same = 1;
    for (int i = 0; i < n; i++) {
        CHECK(tl_session_turn_vec(m, alone[i], x + (size_t)i * P, q_alone + (size_t)i * P, &err) ==
              TL_OK);
        same &= same_bytes(m, alone[i], batched[i]) &&
                tl_session_turn_count(batched[i]) == (uint64_t)(i % ref.T + 1);
    }
    CHECKF(same && !memcmp(q_batch, q_alone, (size_t)n * P * sizeof *x),
           "batch of %d differs from single turns", n);
    free(x);
    free(q_batch);
    free(q_alone);
    free_sessions(alone, n);
    free_sessions(batched, n);
}

TEST(batch_turns_equal_single_turns_bit_for_bit) {
    tl_model *m = NULL, *plain = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    REQUIRE(tl_model_open(&plain, clip_dir, NULL, &err) == TL_OK);
    const int sizes[] = {1, 3, 17};
    for (int k = 0; k < 3; k++) check_batch_equals_single(m, sizes[k]);
    check_batch_equals_single(plain, 3); /* the decayed-sum fallback */
    tl_model_close(plain);
    tl_model_close(m);
}

/* tl_session_turn_vec_batch refuses with TL_ERR_INVALID and text in the message; no session
 * of s[0..3) takes a turn. */
static void check_batch_refused(tl_model *m, tl_session *const *batch, tl_session **s,
                                const float *x, int n, const char *text) {
    tl_error err = {0};
    CHECKF(tl_session_turn_vec_batch(m, batch, x, n, NULL, &err) == TL_ERR_INVALID, "%s", text);
    CHECKF(strstr(err.message, text), "\"%s\" lacks \"%s\"", err.message, text);
    for (int i = 0; i < 3; i++) CHECK(tl_session_turn_count(s[i]) == (uint64_t)(i % ref.T));
}

TEST(batch_refuses_bad_input_naming_the_session) {
    tl_model *m = NULL, *plain = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    REQUIRE(tl_model_open(&plain, clip_dir, NULL, &err) == TL_OK);
    tl_session **s = sessions_with_histories(m, 3), *foreign = NULL;
    REQUIRE(s && tl_session_create(plain, NULL, &foreign, &err) == TL_OK);
    float x[4 * MAX_P] = {0};
    tl_session *batch[4] = {s[0], s[1], s[2], foreign};
    check_batch_refused(m, batch, s, x, 0, "0 sessions");
    check_batch_refused(m, batch, s, x, -2, "-2 sessions");
    check_batch_refused(m, NULL, s, x, 3, "sessions and x are needed");
    check_batch_refused(m, batch, s, NULL, 3, "sessions and x are needed");
    check_batch_refused(m, batch, s, x, 4,
                        "session 3 of the batch of 4: session state does not "
                        "match the model's NTM");
    batch[3] = NULL;
    check_batch_refused(m, batch, s, x, 4, "session 3 of the batch of 4 is NULL");
    batch[3] = s[0];
    check_batch_refused(m, batch, s, x, 4, "sessions 0 and 3 of the batch are the same session");
    x[tl_model_get_info(m)->projection_dim + 2] = NAN; /* session 1's x[2] */
    check_batch_refused(m, batch, s, x, 3, "session 1 of the batch of 3: turn input x[2]");
    tl_session_free(foreign);
    free_sessions(s, 3);
    tl_model_close(plain);
    tl_model_close(m);
}

/* ---- rejected bytes ---- */

static void check_refused(const tl_model *m, const uint8_t *bytes, size_t len, tl_status code,
                          const char *words) {
    tl_session *s = NULL;
    tl_error err = {0};
    tl_status st = tl_session_restore(m, bytes, len, &s, &err);
    CHECKF(st == code && s == NULL && strstr(err.message, words), "%s: status %d, expected %d (%s)",
           words, (int)st, (int)code, err.message);
}

TEST(bad_bytes_are_refused) {
    tl_model *m = NULL, *plain = NULL;
    tl_error err;
    REQUIRE(tl_model_open(&m, tailor_dir, NULL, &err) == TL_OK);
    REQUIRE(tl_model_open(&plain, clip_dir, NULL, &err) == TL_OK);
    tl_session *s = NULL;
    REQUIRE(tl_session_create(m, NULL, &s, &err) == TL_OK);
    float q[64];
    CHECK(run_turns(m, s, 0, 0, 2, q));
    uint8_t *bytes = NULL;
    size_t len = 0;
    REQUIRE(tl_session_serialize(m, s, &bytes, &len, &err) == TL_OK);
    uint8_t *copy = malloc(len);
    memcpy(copy, bytes, len);
    copy[100] ^= 0x10;
    check_refused(m, copy, len, TL_ERR_FORMAT, "checksum mismatch");
    memcpy(copy, bytes, len);
    check_refused(m, copy, len - 9, TL_ERR_FORMAT, "truncated");
    check_refused(m, copy, 20, TL_ERR_FORMAT, "truncated");
    copy[4] = 2; /* version 2 */
    check_refused(m, copy, len, TL_ERR_UNSUPPORTED, "version 2");
    memcpy(copy, bytes, len);
    copy[0] = 'X';
    check_refused(m, copy, len, TL_ERR_FORMAT, "magic");
    check_refused(plain, bytes, len, TL_ERR_INVALID, "the model uses the");
    free(copy);
    free(bytes);
    tl_session_free(s);
    tl_model_close(plain);
    tl_model_close(m);
}

/* ---- clip-tiny: the decayed-sum fallback ---- */

static const char *const turn_images[] = {"a_landscape_rgb_200x120.png", "c_gray_rings_40x40.png",
                                          "e_wide_320x48_q95_444.jpg"};
static const char *const turn_texts[] = {"a red dress", "make it shorter", "with long sleeves"};
#define N_TURNS 3

static int load_turn_images(tl_image *imgs) {
    tl_error err;
    char path[1200];
    for (int t = 0; t < N_TURNS; t++) {
        snprintf(path, sizeof path, "%s/images/%s", clip_dir, turn_images[t]);
        if (img_load_file(path, NULL, &imgs[t], &err) != TL_OK) return 0;
    }
    return 1;
}

/* q_T = n(Σ decay^(T−1−t) x_t) with x_t = tl_compose(image_t, text_t), in double. */
static void check_fallback(float decay_opt, double decay) {
    tl_model *m = NULL;
    tl_error err;
    tl_model_opts opts = {.session_decay = decay_opt};
    REQUIRE(tl_model_open(&m, clip_dir, &opts, &err) == TL_OK);
    CHECK(!(tl_model_capabilities(m) & TL_CAP_NTM));
    int P = tl_model_get_info(m)->projection_dim;
    REQUIRE(P <= MAX_P);
    tl_image imgs[N_TURNS] = {0};
    tl_session *s = NULL, *by_vec = NULL;
    float x[MAX_P], q[MAX_P], q_vec[MAX_P];
    double sum[MAX_P] = {0}, want[MAX_P];
    REQUIRE(load_turn_images(imgs));
    REQUIRE(tl_session_create(m, NULL, &s, &err) == TL_OK);
    REQUIRE(tl_session_create(m, NULL, &by_vec, &err) == TL_OK);
    for (int t = 0; t < N_TURNS; t++) {
        CHECKF(tl_compose(m, &imgs[t], &turn_texts[t], 1, x, &err) == TL_OK, "%s", err.message);
        CHECKF(tl_session_turn(m, s, &imgs[t], turn_texts[t], q, &err) == TL_OK, "%s", err.message);
        CHECK(tl_session_turn_vec(m, by_vec, x, q_vec, &err) == TL_OK);
        CHECK(!memcmp(q, q_vec, (size_t)P * sizeof *q));
        double n2 = 0.0;
        for (int i = 0; i < P; i++) sum[i] = decay * sum[i] + x[i], n2 += sum[i] * sum[i];
        for (int i = 0; i < P; i++) want[i] = sum[i] / sqrt(n2);
        double worst = max_abs_diff(q, want, P);
        CHECKF(worst <= 1e-6, "decay %g turn %d: max abs error %.3g", decay, t, worst);
        CHECK_NEAR(norm(q, P), 1.0, 1e-6);
    }
    CHECK(tl_session_turn_count(s) == N_TURNS);
    CHECK(tl_session_turn(m, s, &imgs[0], NULL, q, &err) == TL_ERR_INVALID);
    CHECK(tl_session_turn_count(s) == N_TURNS);
    for (int t = 0; t < N_TURNS; t++) img_free(&imgs[t]);
    tl_session_free(s);
    tl_session_free(by_vec);
    tl_model_close(m);
}

TEST(fallback_is_the_decayed_sum_of_compositions) {
    check_fallback(0.0f, 0.5); /* default */
    check_fallback(0.25f, 0.25);
}

TEST(fallback_sessions_round_trip_and_keep_their_decay) {
    tl_model *m = NULL, *other = NULL;
    tl_error err;
    tl_model_opts quarter = {.session_decay = 0.25f}, bad = {.session_decay = 1.5f};
    REQUIRE(tl_model_open(&m, clip_dir, NULL, &err) == TL_OK);
    REQUIRE(tl_model_open(&other, clip_dir, &quarter, &err) == TL_OK);
    CHECK(tl_model_open(&(tl_model *){NULL}, clip_dir, &bad, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "decay"), "%s", err.message);
    int P = tl_model_get_info(m)->projection_dim;
    REQUIRE(P <= MAX_P);
    float x[MAX_P] = {0}, q1[MAX_P] = {0}, q2[MAX_P] = {0};
    x[0] = 1.0f, x[1] = -2.0f;
    tl_session *a = NULL, *b = NULL;
    REQUIRE(tl_session_create(m, NULL, &a, &err) == TL_OK);
    CHECK(tl_session_turn_vec(m, a, x, NULL, &err) == TL_OK);
    uint8_t *bytes = NULL;
    size_t len = 0;
    REQUIRE(tl_session_serialize(m, a, &bytes, &len, &err) == TL_OK);
    CHECK(len == 56 + 8 * (size_t)P + 4); /* header, S and q, crc */
    check_refused(other, bytes, len, TL_ERR_INVALID, "decay");
    CHECK(tl_session_restore(m, bytes, len, &b, &err) == TL_OK);
    x[2] = 3.0f;
    CHECK(tl_session_turn_vec(m, a, x, q1, &err) == TL_OK);
    if (b) CHECK(tl_session_turn_vec(m, b, x, q2, &err) == TL_OK);
    CHECK(b && !memcmp(q1, q2, (size_t)P * sizeof *q1));
    x[3] = NAN;
    CHECK(tl_session_turn_vec(m, a, x, q1, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "not finite"), "%s", err.message);
    free(bytes);
    tl_session_free(a);
    tl_session_free(b);
    tl_model_close(other);
    tl_model_close(m);
}

/* ---- a partial NTM ---- */

static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    char buf[4096];
    size_t got;
    int ok = in && out;
    while (ok && (got = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, got, out) == got;
    if (in) fclose(in);
    if (out && fclose(out)) ok = 0;
    return ok;
}

/* tailor-tiny without tensor `missing`, in a new temp dir written to dir. */
static int write_without(char *dir, const char *missing) {
    char src[1200], dst[1200];
    tl_error err;
    strcpy(dir, "/tmp/tl_session_XXXXXX");
    if (!mkdtemp(dir)) return 0;
    snprintf(src, sizeof src, "%s/config.json", tailor_dir);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    st_file *st = NULL;
    if (!copy_file(src, dst) || st_open_dir(&st, tailor_dir, &err)) return 0;
    size_t n = st_count(st), kept = 0;
    st_tensor *ts = calloc(n, sizeof *ts);
    for (size_t i = 0; ts && i < n; i++)
        if (strcmp(st_at(st, i)->name, missing)) ts[kept++] = *st_at(st, i);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    int ok = ts && kept + 1 == n && st_write(dst, ts, kept, NULL, &err) == TL_OK;
    free(ts);
    st_close(st);
    return ok;
}

TEST(partial_ntm_fails_to_load_naming_the_tensor) {
    char dir[64], path[200];
    REQUIRE(write_without(dir, MISSING_NTM));
    tl_model *m = NULL;
    tl_error err;
    tl_status st = tl_model_open(&m, dir, NULL, &err);
    CHECKF(st == TL_ERR_NOT_FOUND && m == NULL && strstr(err.message, MISSING_NTM), "%d: %s",
           (int)st, err.message);
    tl_model_close(m);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    snprintf(tailor_dir, sizeof tailor_dir, "%s/tailor-tiny", th_testdata());
    snprintf(clip_dir, sizeof clip_dir, "%s/clip-tiny", th_testdata());
    if (!load_ref()) {
        printf("Bail out! tailor-tiny ntm_x / ntm.q / ntm.scale unreadable in %s\n", tailor_dir);
        return 1;
    }
    RUN(tiny_has_the_ntm_capability);
    RUN(tiny_turns_match_the_reference);
    RUN(restored_session_continues_bit_for_bit);
    RUN(shown_ids_and_expiry);
    RUN(batch_turns_equal_single_turns_bit_for_bit);
    RUN(batch_refuses_bad_input_naming_the_session);
    RUN(bad_bytes_are_refused);
    RUN(fallback_is_the_decayed_sum_of_compositions);
    RUN(fallback_sessions_round_trip_and_keep_their_decay);
    RUN(partial_ntm_fails_to_load_naming_the_tensor);
    free(ref.x);
    free(ref.q);
    return th_done();
}
