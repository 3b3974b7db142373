/* The CLIP layer API that adapters build on (clip.h) and the config parser's defaults:
 * a layer run in steps out of place equals the in-place tower; key_len masks keys; a config
 * without keys takes HF's CLIPConfig defaults and keeps the "tailor" object. */
#include <stdlib.h>

#include "../harness.h"
#include "model_internal.h"
#include "test_util.h"

static tl_model *open_clip_tiny(void) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/clip-tiny", th_testdata());
    return tu_open_model(dir);
}

static float *random_state(size_t n) {
    float *z = malloc(n * sizeof *z);
    unsigned s = 7;
    for (size_t i = 0; i < n; i++)
        z[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / (1 << 24) - 0.5f;
    return z;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

TEST(layer_steps_out_of_place_match_in_place) {
    tl_model *m = open_clip_tiny();
    REQUIRE(m);
    const clip_tower *t = &m->w.vision.tower;
    int B = 3, T = 17, D = t->width;
    size_t n = (size_t)B * T * D;
    float *z = random_state(n), *zp = malloc(n * sizeof *zp), *out = malloc(n * sizeof *out);
    float *inplace = malloc(n * sizeof *inplace);
    memcpy(inplace, z, n * sizeof *z);
    tl_error err;
    CHECK(!clip_layer_attn_forward(m->be, t, 1, zp, z, B, T, 0, NULL, NULL, &m->scratch, &err));
    CHECK(!clip_layer_mlp_forward(m->be, t, 1, out, zp, B, T, NULL, &m->scratch, &err));
    CHECK(!clip_layer_attn_forward(m->be, t, 1, inplace, inplace, B, T, 0, NULL, NULL, &m->scratch,
                                   &err));
    CHECK(!clip_layer_mlp_forward(m->be, t, 1, inplace, inplace, B, T, NULL, &m->scratch, &err));
    CHECK(max_diff(out, inplace, n) < 1e-5);
    CHECK(max_diff(out, z, n) > 1e-2); /* the layer did something */
    free(z), free(zp), free(out), free(inplace);
    tl_model_close(m);
}

/* With key_len[b] = k, item b's output must not depend on states at positions >= k. */
TEST(key_len_hides_later_keys) {
    tl_model *m = open_clip_tiny();
    REQUIRE(m);
    const clip_tower *t = &m->w.text.tower;
    int B = 2, T = 9, D = t->width, key_len[2] = {4, 9};
    size_t n = (size_t)B * T * D;
    float *a = random_state(n), *b = malloc(n * sizeof *b), *za = malloc(n * sizeof *za),
          *zb = malloc(n * sizeof *zb);
    memcpy(b, a, n * sizeof *a);
    for (size_t i = 6 * (size_t)D; i < (size_t)T * D; i++) b[i] += 1.0f; /* item 0, rows 6.. */
    tl_error err;
    CHECK(!clip_layer_attn_forward(m->be, t, 0, za, a, B, T, 0, key_len, NULL, &m->scratch, &err));
    CHECK(!clip_layer_attn_forward(m->be, t, 0, zb, b, B, T, 0, key_len, NULL, &m->scratch, &err));
    CHECK(max_diff(za, zb, 4 * (size_t)D) < 1e-6);         /* rows 0..3 of item 0 unchanged */
    CHECK(max_diff(za + n / 2, zb + n / 2, n / 2) < 1e-6); /* item 1 untouched */
    free(a), free(b), free(za), free(zb);
    tl_model_close(m);
}

/* More rows than one chunk, of mixed lengths: the batch sorts rows by length internally, and
 * every row must equal the same row encoded alone. */
TEST(text_batches_keep_row_order) {
    tl_model *m = open_clip_tiny();
    REQUIRE(m);
    enum { N = 70, CTX = 20 };
    int P = tl_model_get_info(m)->projection_dim;
    int32_t *ids = calloc((size_t)N * CTX, sizeof *ids);
    for (int i = 0; i < N; i++) {
        int32_t *row = ids + (size_t)i * CTX;
        int len = (i * 7) % 15;
        row[0] = 49406;
        for (int t = 1; t <= len; t++) row[t] = 256 + (i * 31 + t * 17) % 30000;
        row[len + 1] = 49407;
    }
    float *batch = malloc((size_t)N * P * sizeof *batch), one[64];
    tl_error err;
    REQUIRE(!tl_encode_text_ids(m, ids, CTX, N, NULL, batch, &err));
    double worst = 0;
    for (int i = 0; i < N; i++) {
        REQUIRE(!tl_encode_text_ids(m, ids + (size_t)i * CTX, CTX, 1, NULL, one, &err));
        worst = fmax(worst, max_diff(one, batch + (size_t)i * P, (size_t)P));
    }
    CHECKF(worst < 1e-5, "max diff %g", worst);
    free(ids), free(batch);
    tl_model_close(m);
}

TEST(config_defaults_follow_hf) {
    json_t *root = json_loads("{\"tailor\": {\"format\": 1}}", 0, NULL);
    clip_config c;
    tl_error err;
    REQUIRE(clip_config_from_json(&c, root, &err) == TL_OK);
    json_decref(root);
    CHECK(c.text.vocab_size == 49408 && c.text.tower.hidden_size == 512);
    CHECK(c.text.tower.intermediate_size == 2048 && c.text.tower.num_hidden_layers == 12);
    CHECK(c.text.tower.num_attention_heads == 8 && c.text.max_position_embeddings == 77);
    CHECK(c.vision.tower.hidden_size == 768 && c.vision.tower.intermediate_size == 3072);
    CHECK(c.vision.tower.num_hidden_layers == 12 && c.vision.tower.num_attention_heads == 12);
    CHECK(c.vision.num_channels == 3 && c.vision.image_size == 224 && c.vision.patch_size == 32);
    CHECK(c.projection_dim == 512 && fabsf(c.text.tower.layer_norm_eps - 1e-5f) < 1e-12f);
    CHECK(c.text.eos_token_id == 49407);
    CHECK(c.tailor && json_integer_value(json_object_get(c.tailor, "format")) == 1);
    CHECK(c.crop_size == 224 && c.image_std[0] > 0.26f && c.image_std[0] < 0.27f);
    clip_config_free(&c);
}

int main(void) {
    RUN(layer_steps_out_of_place_match_in_place);
    RUN(key_len_hides_later_keys);
    RUN(text_batches_keep_row_order);
    RUN(config_defaults_follow_hf);
    return th_done();
}
