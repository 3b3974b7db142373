/* Bad checkpoints and bad inputs through the public API: each case asserts the status code and
 * that the message names the offending key, tensor or input. Checkpoints are variants of
 * clip-tiny written to a temporary directory. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "../harness.h"
#include "safetensors.h"
#include "tailor_model.h"
#include "test_util.h"

static char clip_dir[4096];
static st_file *clip_st;

static void link_file(const char *dir, const char *name) {
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/%s", clip_dir, name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    if (symlink(from, to)) printf("# symlink %s failed\n", to);
}

/* Opens dir, expecting status `want` with `needle` in the message. */
static void expect_open(const char *dir, tl_status want, const char *needle) {
    tl_model *m = (tl_model *)1;
    tl_error err = {0};
    tl_status st = tl_model_open(&m, dir, NULL, &err);
    CHECKF(st == want, "status %s, want %s (%s)", tl_status_name(st), tl_status_name(want),
           err.message);
    CHECKF(!needle || strstr(err.message, needle), "message '%s' lacks '%s'", err.message, needle);
    if (st == TL_OK)
        tl_model_close(m);
    else
        CHECK(m == NULL);
}

TEST(missing_config_json) {
    char dir[256];
    REQUIRE(!tu_make_temp_dir(dir, sizeof dir, "tl_model_errors"));
    link_file(dir, "model.safetensors");
    expect_open(dir, TL_ERR_NOT_FOUND, "config.json");
    tu_remove_tree(dir);
}

static void expect_bad_config(const char *config, tl_status want, const char *needle) {
    char dir[256];
    REQUIRE(!tu_make_temp_dir(dir, sizeof dir, "tl_model_errors"));
    link_file(dir, "model.safetensors");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tu_write_text(path, config);
    expect_open(dir, want, needle);
    tu_remove_tree(dir);
}

TEST(bad_config_values) {
    expect_bad_config("{\"text_config\": {\"hidden_size\": 64, \"num_attention_heads\": 5}}",
                      TL_ERR_FORMAT, "num_attention_heads");
    expect_bad_config("{\"vision_config\": {\"num_hidden_layers\": 0}}", TL_ERR_FORMAT,
                      "vision_config.num_hidden_layers");
    expect_bad_config("{\"vision_config\": {\"image_size\": 64, \"patch_size\": 15}}",
                      TL_ERR_FORMAT, "patch_size");
    expect_bad_config("{\"text_config\": {\"hidden_act\": \"gelu\"}}", TL_ERR_UNSUPPORTED,
                      "text_config.hidden_act");
    expect_bad_config("{\"projection_dim\": \"32\"}", TL_ERR_FORMAT, "projection_dim");
    expect_bad_config("{\"text_config\": {\"layer_norm_eps\": -1}}", TL_ERR_FORMAT,
                      "layer_norm_eps");
    expect_bad_config("{\"vision_config\": {\"layer_norm_eps\": 1e-85}}", TL_ERR_FORMAT,
                      "vision_config.layer_norm_eps"); /* positive, but 0 as a float */
    expect_bad_config("{\"vision_config\": {\"image_size\": 4096, \"patch_size\": 2}}",
                      TL_ERR_FORMAT, "tokens");
    expect_bad_config("[1, 2]", TL_ERR_FORMAT, "top level");
    expect_bad_config("{\"text_config\": ", TL_ERR_FORMAT, "config.json");
    /* valid JSON, HF defaults (ViT-B/32 sizes) that clip-tiny's tensors do not match */
    expect_bad_config("{}", TL_ERR_FORMAT, "vision_model.encoder.layers.0.layer_norm1.weight");
}

/* A checkpoint of clip-tiny's config with modified weights; expects the open result. */
static void expect_weights(const char *drop, const st_tensor *replace, const st_tensor *extra,
                           size_t n_extra, tl_status want, const char *needle) {
    char dir[256];
    REQUIRE(!tu_make_temp_dir(dir, sizeof dir, "tl_model_errors"));
    link_file(dir, "config.json");
    tu_tensor_edit edit = {
        .drop_name = drop, .replace = replace, .extra = extra, .n_extra = n_extra};
    if (tu_write_variant(dir, clip_dir, &edit) == TL_OK)
        expect_open(dir, want, needle);
    else
        CHECK(0);
    tu_remove_tree(dir);
}

TEST(missing_tensor_is_named) {
    expect_weights("vision_model.encoder.layers.1.mlp.fc2.bias", NULL, NULL, 0, TL_ERR_NOT_FOUND,
                   "vision_model.encoder.layers.1.mlp.fc2.bias");
    expect_weights("logit_scale", NULL, NULL, 0, TL_ERR_NOT_FOUND, "logit_scale");
}

TEST(wrong_shape_is_named) {
    const st_tensor *t = st_find(clip_st, "text_projection.weight");
    REQUIRE(t && t->ndim == 2);
    st_tensor wrong = *t;
    wrong.shape[0] = t->shape[1], wrong.shape[1] = t->shape[0];
    expect_weights(NULL, &wrong, NULL, 0, TL_ERR_FORMAT, "text_projection.weight");
}

TEST(wrong_dtype_is_named) {
    const st_tensor *t = st_find(clip_st, "vision_model.post_layernorm.weight");
    REQUIRE(t != NULL);
    int64_t n = st_numel(t);
    int64_t *data = calloc((size_t)n, sizeof *data);
    st_tensor wrong = *t;
    wrong.dtype = ST_I64;
    wrong.data = data;
    wrong.nbytes = (size_t)n * sizeof *data;
    expect_weights(NULL, &wrong, NULL, 0, TL_ERR_UNSUPPORTED, "vision_model.post_layernorm.weight");
    free(data);
}

TEST(extra_tensors_are_ignored) {
    int64_t positions[77];
    for (int i = 0; i < 77; i++) positions[i] = i;
    float scale = 1.0f;
    st_tensor extra[2] = {
        {"text_model.embeddings.position_ids", ST_I64, 2, {1, 77}, positions, sizeof positions},
        {"mim.mask_token", ST_F32, 1, {1}, &scale, sizeof scale}, /* not loaded for serving */
    };
    expect_weights(NULL, NULL, extra, 2, TL_OK, NULL);
}

TEST(oversized_text_is_limit) {
    tl_model *m = tu_open_model(clip_dir);
    REQUIRE(m);
    size_t len = 1 << 20;
    char *text = malloc(len + 1);
    memset(text, 'a', len);
    text[len] = 0;
    const char *texts[2] = {"a red dress", text};
    float out[2 * 64];
    tl_error err = {0};
    CHECK(tl_embed_texts(m, texts, 2, out, &err) == TL_ERR_LIMIT);
    CHECKF(strstr(err.message, "text 1"), "%s", err.message);
    free(text);
    tl_model_close(m);
}

TEST(bad_inputs_are_rejected) {
    tl_model *m = tu_open_model(clip_dir);
    REQUIRE(m);
    int ctx = tl_model_get_info(m)->context_length, P = tl_model_get_info(m)->projection_dim;
    int32_t *ids = calloc(2 * (size_t)ctx, sizeof *ids);
    ids[0] = 49406, ids[1] = 49407, ids[ctx] = 49406, ids[ctx + 1] = 60000;
    float *out = malloc(2 * (size_t)P * sizeof *out);
    tl_error err = {0};
    CHECK(tl_encode_text_ids(m, ids, ctx, 2, NULL, out, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "row 1") && strstr(err.message, "60000"), "%s", err.message);
    CHECK(tl_encode_text_ids(m, ids, ctx, 1000000, NULL, out, &err) == TL_ERR_LIMIT);
    CHECK(tl_encode_text_ids(m, ids, ctx, -1, NULL, out, &err) == TL_ERR_INVALID);
    int S = tl_model_get_info(m)->image_size;
    float *px = calloc(3 * (size_t)S * S, sizeof *px);
    px[5] = NAN;
    CHECK(tl_encode_pixels(m, px, 1, NULL, out, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "image 0"), "%s", err.message);
    tl_image empty = {0, 0, NULL};
    CHECK(tl_embed_images(m, &empty, 1, out, &err) == TL_ERR_INVALID);
    CHECKF(strstr(err.message, "image 0"), "%s", err.message);
    free(ids), free(out), free(px);
    tl_model_close(m);
}

TEST(backend_choice) {
    tl_model *m = (tl_model *)1;
    tl_error err = {0};
    tl_model_opts opts = {.n_threads = 1, .backend = "tpu"};
    CHECK(tl_model_open(&m, clip_dir, &opts, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "tpu") != NULL);
    opts.backend = "cuda";
    CHECK(tl_model_open(&m, clip_dir, &opts, &err) == TL_ERR_UNSUPPORTED);
    CHECK(strstr(err.message, "CUDA") != NULL);
    CHECK(m == NULL);
}

int main(void) {
    snprintf(clip_dir, sizeof clip_dir, "%s/clip-tiny", th_testdata());
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", clip_dir);
    tl_error err;
    if (st_open(&clip_st, path, &err)) {
        printf("Bail out! %s\n", err.message);
        return 1;
    }
    RUN(missing_config_json);
    RUN(bad_config_values);
    RUN(missing_tensor_is_named);
    RUN(wrong_shape_is_named);
    RUN(wrong_dtype_is_named);
    RUN(extra_tensors_are_ignored);
    RUN(oversized_text_is_limit);
    RUN(bad_inputs_are_rejected);
    RUN(backend_choice);
    st_close(clip_st);
    return th_done();
}
