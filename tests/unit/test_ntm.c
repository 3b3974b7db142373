/* Tests of the session memory (model/ntm*.c) and its byte format (model/session_codec.c):
 * tailor-tiny's CM-NTM reference (T5, T8: 1e-4 against float64), capability detection, the
 * decayed-sum fallback, bit-for-bit continuation after a round trip, and every rejection. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"
#include "ntm.h"
#include "session_codec.h"

#define TOL 1e-4

/* The tailor-tiny model, its inputs and expected values, opened once. */
static struct {
    ntm_config cfg;
    st_file *model, *inputs, *expected;
    tl_backend *be; /* BACKEND_THREADS workers */
    ntm_weights w;
    int turns, batch; /* from ntm_x [T, B, P] */
} tiny;

#define BACKEND_THREADS 3

static char *tiny_path(const char *file) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tailor-tiny/%s", th_testdata(), file);
    return path;
}

static int open_tiny(void) {
    tl_error err = {0};
    json_t *config = json_load_file(tiny_path("config.json"), 0, NULL);
    if (!config) return 0;
    json_t *ntm = json_object_get(json_object_get(config, "tailor"), "ntm");
    int proj = (int)json_integer_value(json_object_get(config, "projection_dim"));
    tl_status st = ntm_config_parse(&tiny.cfg, ntm, proj, &err);
    json_decref(config);
    if (st == TL_OK) st = st_open(&tiny.model, tiny_path("model.safetensors"), &err);
    if (st == TL_OK) st = st_open(&tiny.inputs, tiny_path("inputs.safetensors"), &err);
    if (st == TL_OK) st = st_open(&tiny.expected, tiny_path("expected.safetensors"), &err);
    if (st == TL_OK) st = tl_backend_cpu_create(&tiny.be, BACKEND_THREADS, &err);
    if (st == TL_OK) st = ntm_weights_bind(&tiny.w, tiny.model, &tiny.cfg, tiny.be, &err);
    if (st != TL_OK) {
        printf("# tailor-tiny: %s\n", err.message);
        return 0;
    }
    const st_tensor *x = st_find(tiny.inputs, "ntm_x");
    if (!x || x->ndim != 3 || x->shape[2] != tiny.cfg.proj) return 0;
    tiny.turns = (int)x->shape[0], tiny.batch = (int)x->shape[1];
    return 1;
}

static void close_tiny(void) {
    ntm_weights_release(&tiny.w);
    if (tiny.be) tiny.be->destroy(tiny.be);
    st_close(tiny.model);
    st_close(tiny.inputs);
    st_close(tiny.expected);
}

/* x_t of transaction b, as stored. */
static const float *tiny_x(int t, int b) {
    const float *x = st_find(tiny.inputs, "ntm_x")->data;
    return x + ((size_t)t * tiny.batch + b) * tiny.cfg.proj;
}

/* Checks got[n] against expected tensor `name` (F64, same element order) within TOL. */
static void check_expected(const char *name, const float *got, size_t n) {
    const st_tensor *t = st_find(tiny.expected, name);
    CHECKF(t != NULL, "%s missing from expected.safetensors", name);
    if (!t) return;
    CHECKF((size_t)st_numel(t) == n, "%s: %lld values expected, %zu computed", name,
           (long long)st_numel(t), n);
    if ((size_t)st_numel(t) != n) return;
    double *ref = malloc(n * sizeof *ref), worst = 0.0;
    st_to_f64(t, ref);
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)got[i] - ref[i]));
    CHECKF(worst <= TOL, "%s: max abs error %.3g > %g", name, worst, TOL);
    printf("#   %-22s max abs error %.2e\n", name, worst);
    free(ref);
}

/* Everything ntm.* of expected.safetensors, computed, in its layouts (README T5). */
typedef struct tiny_run {
    float *q, *outputs, *read_w, *write_w, *read_v; /* per turn */
    float *M, *h, *cell, *r, *w_r, *w_w;            /* final, [block, transaction, ...] */
} tiny_run;

static void copy_final_state(tiny_run *run, const ntm_state *s, int b) {
    const ntm_config *c = &tiny.cfg;
    size_t N = (size_t)c->slots, W = (size_t)c->width, H = (size_t)c->hidden;
    for (int k = 0; k < c->blocks; k++) {
        size_t kb = (size_t)k * tiny.batch + b;
        const ntm_block_state *bs = &s->blocks[k];
        memcpy(run->M + kb * N * W, bs->M, N * W * sizeof(float));
        memcpy(run->h + kb * H, bs->h, H * sizeof(float));
        memcpy(run->cell + kb * H, bs->cell, H * sizeof(float));
        memcpy(run->r + kb * W, bs->r, W * sizeof(float));
        memcpy(run->w_r + kb * N, bs->w_r, N * sizeof(float));
        memcpy(run->w_w + kb * N, bs->w_w, N * sizeof(float));
    }
}

/* Per-block trace [C, X] of one turn → [turn, block, transaction, X]. */
static void scatter_trace(float *dst, const float *src, int t, int b, size_t X) {
    for (int k = 0; k < tiny.cfg.blocks; k++)
        memcpy(dst + (((size_t)t * tiny.cfg.blocks + k) * tiny.batch + b) * X, src + k * X,
               X * sizeof(float));
}

static void run_transaction(tiny_run *run, int b) {
    const ntm_config *c = &tiny.cfg;
    size_t C = (size_t)c->blocks, N = (size_t)c->slots, W = (size_t)c->width, P = (size_t)c->proj;
    float *tr = malloc((C * (P + 2 * N + W)) * sizeof(float));
    ntm_trace trace = {tr, tr + C * P, tr + C * (P + N), tr + C * (P + 2 * N)};
    ntm_state s;
    tl_error err = {0};
    CHECK(ntm_state_alloc(&s, c, &err) == TL_OK);
    CHECK(ntm_state_init(&s, &tiny.w, &err) == TL_OK);
    for (int t = 0; t < tiny.turns; t++) {
        float *q = run->q + ((size_t)t * tiny.batch + b) * P;
        CHECKF(ntm_turn(&tiny.w, &s, tiny_x(t, b), q, &trace, &err) == TL_OK, "%s", err.message);
        scatter_trace(run->outputs, trace.block_outputs, t, b, P);
        scatter_trace(run->read_w, trace.read_weights, t, b, N);
        scatter_trace(run->write_w, trace.write_weights, t, b, N);
        scatter_trace(run->read_v, trace.read_vectors, t, b, W);
    }
    CHECK(s.turns == (uint64_t)tiny.turns);
    copy_final_state(run, &s, b);
    ntm_state_release(&s);
    free(tr);
}

/* logits[B, B] = q_{T−1} · galleryᵀ and their CE against the diagonal. */
static float logits_and_loss(const float *q_last, float *logits) {
    const float *g = st_find(tiny.inputs, "ntm_gallery")->data;
    int B = tiny.batch, P = tiny.cfg.proj;
    double loss = 0.0;
    for (int i = 0; i < B; i++) {
        double max = -INFINITY, sum = 0.0;
        for (int j = 0; j < B; j++) {
            float dot = 0.0f;
            for (int k = 0; k < P; k++) dot += q_last[i * P + k] * g[j * P + k];
            logits[i * B + j] = dot;
            max = fmax(max, dot);
        }
        for (int j = 0; j < B; j++) sum += exp(logits[i * B + j] - max);
        // cppcheck-suppress invalidFunctionArg ; B >= 1, so sum >= 1
        loss += max + log(sum) - logits[i * B + i];
    }
    return (float)(loss / B);
}

TEST(tailor_tiny_matches_reference) {
    const ntm_config *c = &tiny.cfg;
    size_t T = (size_t)tiny.turns, B = (size_t)tiny.batch, C = (size_t)c->blocks;
    size_t N = (size_t)c->slots, W = (size_t)c->width, H = (size_t)c->hidden, P = (size_t)c->proj;
    size_t sizes[] = {T * B * P,     T * C * B * P, T * C * B * N, T * C * B * N,
                      T * C * B * W, C * B * N * W, C * B * H,     C * B * H,
                      C * B * W,     C * B * N,     C * B * N};
    const char *names[] = {"ntm.q",
                           "ntm.block_outputs",
                           "ntm.read_weights",
                           "ntm.write_weights",
                           "ntm.read_vectors",
                           "ntm.final.M",
                           "ntm.final.h",
                           "ntm.final.cell",
                           "ntm.final.r",
                           "ntm.final.w_r",
                           "ntm.final.w_w"};
    float *bufs[11];
    for (int i = 0; i < 11; i++) bufs[i] = calloc(sizes[i], sizeof(float));
    tiny_run run = {bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5],
                    bufs[6], bufs[7], bufs[8], bufs[9], bufs[10]};
    for (size_t b = 0; b < B; b++) run_transaction(&run, (int)b);
    for (int i = 0; i < 11; i++) check_expected(names[i], bufs[i], sizes[i]);
    float *logits = malloc(B * B * sizeof(float));
    float loss = logits_and_loss(run.q + (T - 1) * B * P, logits);
    check_expected("ntm.logits", logits, B * B);
    check_expected("loss.ntm", &loss, 1);
    free(logits);
    for (int i = 0; i < 11; i++) free(bufs[i]);
}

TEST(config_errors_name_the_key) {
    tl_error err = {0};
    ntm_config cfg;
    json_t *ntm = json_pack("{s:i, s:i, s:i}", "blocks", 3, "slots", 4, "width", 32);
    CHECK(ntm_config_parse(&cfg, ntm, 32, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "tailor.ntm.hidden") && strstr(err.message, "missing"), "%s",
           err.message);
    json_object_set_new(ntm, "hidden", json_string("32"));
    CHECK(ntm_config_parse(&cfg, ntm, 32, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "tailor.ntm.hidden is not an integer"), "%s", err.message);
    json_object_set_new(ntm, "hidden", json_integer(32));
    json_object_set_new(ntm, "slots", json_integer(0));
    CHECK(ntm_config_parse(&cfg, ntm, 32, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "tailor.ntm.slots must be an integer in 1..65536, got 0"), "%s",
           err.message);
    json_object_set_new(ntm, "slots", json_integer(4));
    CHECK(ntm_config_parse(&cfg, ntm, 32, &err) == TL_OK);
    CHECK(cfg.blocks == 3 && cfg.slots == 4 && cfg.width == 32 && cfg.hidden == 32);
    json_t *not_object = json_integer(1);
    CHECK(ntm_config_parse(&cfg, not_object, 32, &err) == TL_ERR_INVALID);
    json_decref(not_object);
    CHECK(ntm_config_decayed_sum(&cfg, 32, 1.5f, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "decay"), "%s", err.message);
    CHECK(ntm_config_decayed_sum(&cfg, 32, NAN, &err) == TL_ERR_INVALID);
    json_decref(ntm);
}

/* Writes the ntm.* tensors of tailor-tiny, minus `drop` and with `reshape` given shape [1],
 * to a temporary file and opens it. */
static st_file *ntm_subset(const char *drop, const char *reshape) {
    size_t n = 0, count = st_count(tiny.model);
    st_tensor *ts = calloc(count, sizeof *ts);
    for (size_t i = 0; i < count; i++) {
        const st_tensor *t = st_at(tiny.model, i);
        if (strncmp(t->name, "ntm.", 4) != 0 || (drop && strcmp(t->name, drop) == 0)) continue;
        ts[n] = *t;
        if (reshape && strcmp(t->name, reshape) == 0) ts[n].ndim = 1, ts[n].shape[0] = 1;
        if (ts[n].ndim == 1 && ts[n].shape[0] == 1) ts[n].nbytes = sizeof(float);
        n++;
    }
    char path[] = "/tmp/test_ntm_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    tl_error err = {0};
    st_file *f = NULL;
    if (st_write(path, ts, n, NULL, &err) != TL_OK || st_open(&f, path, &err) != TL_OK)
        printf("# ntm_subset: %s\n", err.message);
    unlink(path);
    free(ts);
    return f;
}

TEST(capability_is_all_or_nothing) {
    tl_error err = {0};
    bool present = false;
    CHECK(ntm_tensors_detect(tiny.model, &tiny.cfg, &present, &err) == TL_OK && present);
    CHECK(ntm_tensors_detect(tiny.model, NULL, &present, &err) == TL_ERR_FORMAT && !present);
    CHECKF(strstr(err.message, "config.json has no tailor.ntm"), "%s", err.message);
    char clip[4096];
    snprintf(clip, sizeof clip, "%s/clip-tiny/model.safetensors", th_testdata());
    st_file *plain = NULL;
    REQUIRE(st_open(&plain, clip, &err) == TL_OK);
    CHECK(ntm_tensors_detect(plain, &tiny.cfg, &present, &err) == TL_OK && !present);
    ntm_weights w;
    CHECK(ntm_weights_bind(&w, plain, &tiny.cfg, tiny.be, &err) == TL_ERR_NOT_FOUND);
    CHECKF(strstr(err.message, "ntm.blocks.0.lstm.weight_ih"), "%s", err.message);
    st_close(plain);

    st_file *partial = ntm_subset("ntm.blocks.1.read.bias", NULL);
    REQUIRE(partial != NULL);
    CHECK(ntm_tensors_detect(partial, &tiny.cfg, &present, &err) == TL_ERR_NOT_FOUND);
    CHECKF(strstr(err.message, "ntm.blocks.1.read.bias is missing"), "%s", err.message);
    CHECK(!present);
    ntm_config fewer = tiny.cfg;
    fewer.blocks = 2;
    CHECK(ntm_tensors_detect(partial, &fewer, &present, &err) == TL_ERR_FORMAT);
    CHECKF(strstr(err.message, "ntm.blocks.2.") && strstr(err.message, "does not belong"), "%s",
           err.message);
    st_close(partial);

    st_file *misshaped = ntm_subset(NULL, "ntm.blocks.2.out.bias");
    REQUIRE(misshaped != NULL);
    CHECK(ntm_weights_bind(&w, misshaped, &tiny.cfg, tiny.be, &err) == TL_ERR_FORMAT);
    CHECKF(strstr(err.message, "ntm.blocks.2.out.bias"), "%s", err.message);
    st_close(misshaped);
}

/* Runs turns [from, to) of transaction b on s. */
static void run_turns(const ntm_weights *w, ntm_state *s, int b, int from, int to, float *q) {
    tl_error err = {0};
    for (int t = from; t < to; t++)
        CHECKF(ntm_turn(w, s, tiny_x(t, b), q, NULL, &err) == TL_OK, "%s", err.message);
}

static void check_round_trip_continues(const ntm_weights *w) {
    tl_error err = {0};
    size_t P = (size_t)w->cfg.proj;
    float q_whole[512], q_resumed[512];
    REQUIRE(P <= 512);
    ntm_state whole, first, resumed;
    REQUIRE(ntm_state_alloc(&whole, &w->cfg, &err) == TL_OK);
    REQUIRE(ntm_state_alloc(&first, &w->cfg, &err) == TL_OK);
    CHECK(ntm_state_init(&whole, w, &err) == TL_OK && ntm_state_init(&first, w, &err) == TL_OK);
    run_turns(w, &whole, 2, 0, tiny.turns, q_whole);
    run_turns(w, &first, 2, 0, tiny.turns - 1, q_resumed);
    uint64_t ids[] = {17, UINT64_MAX, 3};
    session_meta meta = {ids, 3, true, -1234567890123LL}, back;
    uint8_t *bytes;
    size_t len;
    REQUIRE(session_serialize(&first, &meta, &bytes, &len, &err) == TL_OK);
    CHECKF(session_deserialize(bytes, len, &w->cfg, &resumed, &back, &err) == TL_OK, "%s",
           err.message);
    REQUIRE(resumed.values != NULL);
    CHECK(back.n_shown == 3 && memcmp(back.shown_ids, ids, sizeof ids) == 0);
    CHECK(back.has_expiry && back.expires_at == -1234567890123LL);
    run_turns(w, &resumed, 2, tiny.turns - 1, tiny.turns, q_resumed);
    CHECK(memcmp(q_whole, q_resumed, P * sizeof(float)) == 0);
    CHECK(resumed.turns == whole.turns);
    CHECK(resumed.n_values == whole.n_values &&
          memcmp(resumed.values, whole.values, whole.n_values * sizeof(float)) == 0);
    free(bytes);
    session_meta_release(&back);
    ntm_state_release(&whole);
    ntm_state_release(&first);
    ntm_state_release(&resumed);
}

TEST(round_trip_continues_bit_for_bit) {
    check_round_trip_continues(&tiny.w);
}

/* A serialised tailor-tiny state after two turns, with two shown ids and an expiry. */
static uint8_t *valid_session(size_t *len) {
    tl_error err = {0};
    ntm_state s;
    uint8_t *bytes = NULL;
    uint64_t ids[] = {5, 6};
    session_meta meta = {ids, 2, true, 1700000000};
    if (ntm_state_alloc(&s, &tiny.cfg, &err) != TL_OK) return NULL;
    ntm_state_init(&s, &tiny.w, &err);
    run_turns(&tiny.w, &s, 0, 0, 2, NULL);
    session_serialize(&s, &meta, &bytes, len, &err);
    ntm_state_release(&s);
    return bytes;
}

static void reseal(uint8_t *bytes, size_t len) {
    uint32_t crc = (uint32_t)crc32(0L, bytes, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) bytes[len - 4 + i] = (uint8_t)(crc >> (8 * i));
}

/* Deserialising bytes fails with code and a message containing text; the state stays empty. */
static void check_rejected(const uint8_t *bytes, size_t len, const ntm_config *cfg, tl_status code,
                           const char *text) {
    tl_error err = {0};
    ntm_state s;
    session_meta meta;
    tl_status st = session_deserialize(bytes, len, cfg, &s, &meta, &err);
    CHECKF(st == code, "len %zu: status %s, expected %s (%s)", len, tl_status_name(st),
           tl_status_name(code), err.message);
    CHECKF(strstr(err.message, text) != NULL, "len %zu: message \"%s\" lacks \"%s\"", len,
           err.message, text);
    CHECK(s.values == NULL && meta.shown_ids == NULL);
    ntm_state_release(&s);
}

TEST(rejects_damaged_sessions) {
    size_t len;
    uint8_t *good = valid_session(&len);
    REQUIRE(good != NULL);
    size_t floats = ntm_state_floats(&tiny.cfg); /* proto/session.md: header, payload, 2 ids */
    CHECK(len == SESSION_HEADER_BYTES + 4 * floats + (4 + 2 * 8) + 8 + 4);
    CHECK(memcmp(good, "TLSS\x01\x00\x03\x00\x01\x00\x00\x00", 12) == 0);
    uint8_t *bad = malloc(len + 1);
    const ntm_config *cfg = &tiny.cfg;

    for (size_t cut = 0; cut < len; cut++)
        check_rejected(good, cut, cfg, TL_ERR_FORMAT, "truncated");
    memcpy(bad, good, len), bad[len] = 0;
    check_rejected(bad, len + 1, cfg, TL_ERR_FORMAT, "1 extra bytes");
    memcpy(bad, good, len), bad[SESSION_HEADER_BYTES + 7] ^= 0x10;
    check_rejected(bad, len, cfg, TL_ERR_FORMAT, "checksum mismatch");
    memcpy(bad, good, len), bad[0] = 'X';
    check_rejected(bad, len, cfg, TL_ERR_FORMAT, "bad magic");
    memcpy(bad, good, len), bad[4] = 2, reseal(bad, len);
    check_rejected(bad, len, cfg, TL_ERR_UNSUPPORTED, "version 2 is not supported");
    memcpy(bad, good, len), bad[6] = 0x80, reseal(bad, len);
    check_rejected(bad, len, cfg, TL_ERR_FORMAT, "unknown flags");
    memcpy(bad, good, len), bad[12] = 0x70, bad[13] = 0x11, bad[14] = 0x01, reseal(bad, len);
    check_rejected(bad, len, cfg, TL_ERR_LIMIT, "exceeds the limit");
    memcpy(bad, good, len), bad[16] = 5, reseal(bad, len);
    check_rejected(bad, len, cfg, TL_ERR_FORMAT, "dimensions imply");
    memcpy(bad, good, len);
    uint32_t nan_bits = 0x7fc00000u;
    memcpy(bad + SESSION_HEADER_BYTES + 4 * 3, &nan_bits, 4), reseal(bad, len);
    check_rejected(bad, len, cfg, TL_ERR_FORMAT, "payload float 3 is not finite");

    ntm_config other = *cfg;
    other.slots = cfg->slots + 1;
    check_rejected(good, len, &other, TL_ERR_INVALID, "do not match the model's");
    ntm_config decayed;
    tl_error err = {0};
    CHECK(ntm_config_decayed_sum(&decayed, cfg->proj, 0.5f, &err) == TL_OK);
    check_rejected(good, len, &decayed, TL_ERR_INVALID, "cascaded NTM state");
    free(bad);
    free(good);
}

TEST(turn_refuses_bad_input) {
    tl_error err = {0};
    ntm_state s, wrong;
    float x[512] = {0};
    REQUIRE(tiny.cfg.proj <= 512);
    REQUIRE(ntm_state_alloc(&s, &tiny.cfg, &err) == TL_OK);
    CHECK(ntm_state_init(&s, &tiny.w, &err) == TL_OK);
    x[1] = NAN;
    CHECK(ntm_turn(&tiny.w, &s, x, NULL, NULL, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "x[1] is not finite"), "%s", err.message);
    CHECK(s.turns == 0);
    ntm_config other = tiny.cfg;
    other.hidden++;
    REQUIRE(ntm_state_alloc(&wrong, &other, &err) == TL_OK);
    CHECK(ntm_state_init(&wrong, &tiny.w, &err) == TL_ERR_INVALID);
    x[1] = 0.0f;
    CHECK(ntm_turn(&tiny.w, &wrong, x, NULL, NULL, &err) == TL_ERR_INVALID);
    ntm_state_release(&s);
    ntm_state_release(&wrong);
}

/* ---- batches ---- */

/* n states of w's configuration with different histories: state i has taken i % T turns of
 * transaction i % B. */
static ntm_state *states_with_histories(const ntm_weights *w, int n) {
    ntm_state *s = calloc((size_t)n, sizeof *s);
    tl_error err = {0};
    for (int i = 0; s && i < n; i++) {
        CHECK(ntm_state_alloc(&s[i], &w->cfg, &err) == TL_OK);
        CHECK(ntm_state_init(&s[i], w, &err) == TL_OK);
        run_turns(w, &s[i], i % tiny.batch, 0, i % tiny.turns, NULL);
    }
    return s;
}

static void release_states(ntm_state *s, int n) {
    for (int i = 0; s && i < n; i++) ntm_state_release(&s[i]);
    free(s);
}

/* x [n, P]: session i's next input, x_{i % T} of transaction (i + 1) % B. */
static float *batch_inputs(int n) {
    size_t P = (size_t)tiny.cfg.proj;
    float *x = malloc((size_t)n * P * sizeof *x);
    for (int i = 0; x && i < n; i++)
        memcpy(x + i * P, tiny_x(i % tiny.turns, (i + 1) % tiny.batch), P * sizeof *x);
    return x;
}

/* n sessions through one ntm_turn_batch on w (3 threads) against ntm_turn on each alone with
 * single (1 thread): q and the whole state equal bit for bit. */
static void check_batch_matches_single(const ntm_weights *w, const ntm_weights *single, int n) {
    tl_error err = {0};
    size_t P = (size_t)w->cfg.proj;
    ntm_state *batched = states_with_histories(w, n), *alone = states_with_histories(single, n);
    ntm_state **ptrs = malloc((size_t)n * sizeof *ptrs);
    float *x = batch_inputs(n), *q_batch = malloc((size_t)n * P * sizeof(float));
    float *q_alone = malloc((size_t)n * P * sizeof(float));
    REQUIRE(batched && alone && ptrs && x && q_batch && q_alone);
    for (int i = 0; i < n; i++) ptrs[i] = &batched[i];
    CHECKF(ntm_turn_batch(w, ptrs, x, n, q_batch, &err) == TL_OK, "%s", err.message);
    int same = 1;
    for (int i = 0; i < n; i++) {
        CHECK(ntm_turn(single, &alone[i], x + i * P, q_alone + i * P, NULL, &err) == TL_OK);
        same &= batched[i].turns == alone[i].turns &&
                !memcmp(batched[i].values, alone[i].values, alone[i].n_values * sizeof(float));
    }
    CHECKF(same && !memcmp(q_batch, q_alone, (size_t)n * P * sizeof(float)),
           "batch of %d differs from single turns", n);
    free(ptrs);
    free(x);
    free(q_batch);
    free(q_alone);
    release_states(batched, n);
    release_states(alone, n);
}

TEST(batch_equals_single_turns_bit_for_bit) {
    tl_error err = {0};
    tl_backend *one = NULL;
    ntm_weights single;
    REQUIRE(tl_backend_cpu_create(&one, 1, &err) == TL_OK);
    REQUIRE(ntm_weights_bind(&single, tiny.model, &tiny.cfg, one, &err) == TL_OK);
    const int sizes[] = {1, 3, 17, NTM_BATCH_MAX + 6}; /* the last runs in two passes */
    for (int k = 0; k < 4; k++) check_batch_matches_single(&tiny.w, &single, sizes[k]);
    ntm_weights_release(&single);
    one->destroy(one);
}

/* ntm_turn_batch(ptrs[0..n)) fails with a message containing text, and no state steps. */
static void check_batch_refused(ntm_state *const *ptrs, const ntm_state *s, int n_states,
                                const float *x, int n, const char *text) {
    tl_error err = {0};
    float q[4 * 512];
    CHECKF(ntm_turn_batch(&tiny.w, ptrs, x, n, q, &err) == TL_ERR_INVALID, "%s", text);
    CHECKF(strstr(err.message, text), "\"%s\" lacks \"%s\"", err.message, text);
    for (int i = 0; i < n_states; i++) CHECK(s[i].turns == (uint64_t)(i % tiny.turns));
}

TEST(batch_refuses_bad_input_before_any_turn) {
    tl_error err = {0};
    size_t P = (size_t)tiny.cfg.proj;
    REQUIRE(P <= 512);
    ntm_state *s = states_with_histories(&tiny.w, 3), wrong;
    float *x = batch_inputs(4);
    ntm_config other = tiny.cfg;
    other.slots++;
    REQUIRE(s && x && ntm_state_alloc(&wrong, &other, &err) == TL_OK);
    ntm_state *ptrs[4] = {&s[0], &s[1], &s[2], &wrong};
    check_batch_refused(ptrs, s, 3, x, 0, "at least 1");
    check_batch_refused(NULL, s, 3, x, 3, "needs its states and inputs");
    check_batch_refused(ptrs, s, 3, NULL, 3, "needs its states and inputs");
    check_batch_refused(ptrs, s, 3, x, 4, "session 3 of the batch of 4: session state does not");
    ptrs[3] = &s[1];
    check_batch_refused(ptrs, s, 3, x, 4, "sessions 1 and 3 of the batch are the same session");
    ptrs[3] = NULL;
    check_batch_refused(ptrs, s, 3, x, 4, "session 3 of the batch of 4 is NULL");
    x[2 * P + 5] = INFINITY;
    check_batch_refused(ptrs, s, 3, x, 3, "session 2 of the batch of 3: turn input x[5] is not");
    ntm_state_release(&wrong);
    release_states(s, 3);
    free(x);
}

/* The fallback's q after all turns of transaction b against n(Σ decay^(T−1−t) x_t) in double. */
static void check_decayed_sum(float decay) {
    tl_error err = {0};
    ntm_config cfg;
    ntm_weights w;
    ntm_state s;
    int P = tiny.cfg.proj, T = tiny.turns;
    REQUIRE(ntm_config_decayed_sum(&cfg, P, decay, &err) == TL_OK);
    REQUIRE(ntm_weights_bind(&w, NULL, &cfg, NULL, &err) == TL_OK);
    REQUIRE(ntm_state_alloc(&s, &cfg, &err) == TL_OK);
    CHECK(ntm_state_init(&s, &w, &err) == TL_OK);
    float q[512];
    REQUIRE(P <= 512);
    run_turns(&w, &s, 1, 0, T, q);
    double direct[512], norm = 0.0;
    for (int i = 0; i < P; i++) {
        direct[i] = 0.0;
        for (int t = 0; t < T; t++) direct[i] += pow(decay, T - 1 - t) * tiny_x(t, 1)[i];
        norm += direct[i] * direct[i];
    }
    for (int i = 0; i < P; i++) CHECK_NEAR(q[i], direct[i] / sqrt(norm), 1e-6);
    check_round_trip_continues(&w);
    ntm_config other = cfg;
    other.decay = decay / 2;
    uint8_t *bytes;
    size_t len;
    REQUIRE(session_serialize(&s, NULL, &bytes, &len, &err) == TL_OK);
    check_rejected(bytes, len, &other, TL_ERR_INVALID, "decay");
    free(bytes);
    ntm_state_release(&s);
    ntm_weights_release(&w);
}

TEST(decayed_sum_fallback) {
    check_decayed_sum(0.5f);
    check_decayed_sum(0.25f);
    check_decayed_sum(1.0f);
}

int main(void) {
    if (!open_tiny()) {
        printf("not ok 1 - tailor-tiny could not be opened from %s\n1..1\n", th_testdata());
        return 1;
    }
    RUN(tailor_tiny_matches_reference);
    RUN(config_errors_name_the_key);
    RUN(capability_is_all_or_nothing);
    RUN(round_trip_continues_bit_for_bit);
    RUN(rejects_damaged_sessions);
    RUN(turn_refuses_bad_input);
    RUN(batch_equals_single_turns_bit_for_bit);
    RUN(batch_refuses_bad_input_before_any_turn);
    RUN(decayed_sum_fallback);
    close_tiny();
    return th_done();
}
