/* Parameter sets (declare/bind passes, loading, errors), loading the trainable model, and the
 * training steps' refusals of bad input: every failure is a status with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "train_tasks.h"

static tl_backend *be;
static char tiny[4096];

TEST(param_set_declares_binds_and_refuses_mismatches) {
    param_set s = {0};
    float *a = NULL, *ga = NULL, *b = NULL;
    tl_error err;
    const int64_t sa[2] = {3, 5}, sb[1] = {7};
    CHECK(param_set_tensor(&s, &a, &ga, 2, sa, "blk.0.weight", &err) == TL_OK);
    CHECK(param_set_tensor(&s, &b, NULL, 1, sb, "blk.0.bias", &err) == TL_OK);
    CHECK(a == NULL && s.count == 2 && s.total >= 22);
    REQUIRE(param_set_allocate(&s, 1, &err) == TL_OK);
    CHECK(param_set_tensor(&s, &a, &ga, 2, sa, "blk.0.weight", &err) == TL_OK);
    CHECK(a == s.data && ga == s.grad);
    CHECK(param_set_tensor(&s, &b, NULL, 1, sa, "blk.0.bias", &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "blk.0.bias") != NULL);
    CHECK(param_set_tensor(&s, &b, NULL, 1, sb, "extra", &err) == TL_ERR_INVALID);
    CHECK(param_set_find(&s, "blk.0.bias") == &s.tensors[1]);
    CHECK(param_set_find(&s, "nope") == NULL);
    ga[0] = 3;
    param_set_zero_grad(&s);
    CHECK(ga[0] == 0);
    char long_name[200];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    CHECK(param_set_tensor(&s, &b, NULL, 1, sb, long_name, &err) == TL_ERR_LIMIT);
    param_set_free(&s);
}

TEST(param_set_load_names_a_missing_tensor) {
    param_set s = {0};
    float *a = NULL;
    tl_error err;
    const int64_t shape[1] = {4};
    param_set_tensor(&s, &a, NULL, 1, shape, "not.in.the.checkpoint", &err);
    REQUIRE(param_set_allocate(&s, 0, &err) == TL_OK);
    CHECK(s.grad == NULL);
    st_file *f = NULL;
    REQUIRE(st_open_dir(&f, tiny, &err) == TL_OK);
    CHECK(param_set_load(&s, f, &err) == TL_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "not.in.the.checkpoint") != NULL);
    st_close(f);
    param_set_free(&s);
}

TEST(model_load_refuses_a_checkpoint_without_tailor_parts) {
    train_model m;
    tl_error err;
    char clip[4200];
    snprintf(clip, sizeof clip, "%s/clip-tiny", th_testdata());
    CHECK(train_model_load(&m, be, clip, 0, &err) == TL_ERR_FORMAT);
    CHECK(strstr(err.message, "tailor") != NULL);
    CHECK(train_model_load(&m, be, "/nonexistent/dir", 0, &err) == TL_ERR_NOT_FOUND);
}

TEST(model_grads_exist_only_for_trained_parts) {
    train_model m;
    tl_error err;
    REQUIRE(train_model_load(&m, be, tiny, 1u << TRAIN_PART_NTM, &err) == TL_OK);
    size_t n = 0;
    CHECK(train_model_grad(&m, "ntm.scale", &n) != NULL && n == 1);
    CHECK(train_model_grad(&m, "visual_projection.weight", &n) == NULL);
    CHECK(train_model_grad(&m, "no.such.tensor", &n) == NULL);
    CHECK(m.text.dtok_emb == NULL && m.ntm.dscale != NULL);
    CHECK(m.vision.tokens == 5 && m.text.tower.heads == 3 && m.ntm.blocks == 3);
    train_model_free(&m);
}

TEST(steps_refuse_bad_input) {
    train_model m;
    train_arena ar = {0};
    tl_error err;
    REQUIRE(train_model_load(&m, be, tiny, (1u << TRAIN_PART_COUNT) - 1, &err) == TL_OK);
    size_t image = (size_t)3 * m.vision.image_size * m.vision.image_size;
    float *pixels = calloc(2 * image, sizeof *pixels);
    int32_t ids[2][4] = {{510, 7, 511, 0}, {510, 9000, 511, 0}}; /* 9000: past the vocabulary */
    double loss;
    CHECK(train_xmr_step(&m, &ar, pixels, &ids[0][0], 4, 2, NULL, &loss, &err) == TL_ERR_INVALID);
    CHECK(strstr(err.message, "9000") != NULL);
    ids[1][1] = 8;
    int labels[2] = {0, 5}; /* 5 classes: 0..4 */
    CHECK(train_scr_step(&m, &ar, pixels, &ids[0][0], 4, labels, 2, NULL, &loss, &err) ==
          TL_ERR_INVALID);
    labels[1] = 4;
    CHECK(train_scr_step(&m, &ar, pixels, &ids[0][0], 4, labels, 2, NULL, &loss, &err) == TL_OK);
    CHECK(isfinite(loss) && loss > 0);
    int32_t caption[2] = {510, 511};
    CHECK(train_fic_step(&m, &ar, pixels, caption, 1, 2, NULL, &loss, &err) == TL_OK);
    int32_t *long_caption = calloc(100, sizeof *long_caption); /* past 77 positions */
    CHECK(train_fic_step(&m, &ar, pixels, long_caption, 1, 100, NULL, &loss, &err) == TL_ERR_LIMIT);
    float x[32] = {1}, g[32] = {1};
    CHECK(train_ntm_step(&m, &ar, x, g, 0, 1, &loss, &err) == TL_ERR_INVALID);
    free(pixels);
    free(long_caption);
    train_arena_free(&ar);
    train_model_free(&m);
}

TEST(saved_weights_load_again) {
    train_model m, back;
    tl_error err;
    REQUIRE(train_model_load(&m, be, tiny, 0, &err) == TL_OK);
    m.ntm.scale[0] = 1.25f; /* a changed value must come back */
    m.text.tok_emb[7] = -3.5f;
    char dir[] = "/tmp/tailor-train-save-XXXXXX", path[256], cmd[4400];
    REQUIRE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(train_model_save(&m, path, &err) == TL_OK);
    snprintf(cmd, sizeof cmd, "cp '%s/config.json' '%s/'", tiny, dir);
    REQUIRE(system(cmd) == 0);
    REQUIRE(train_model_load(&back, be, dir, 0, &err) == TL_OK);
    for (int p = 0; p < TRAIN_PART_COUNT; p++)
        CHECKF(!memcmp(m.parts[p].data, back.parts[p].data, m.parts[p].total * sizeof(float)),
               "part %s differs after the round trip", train_part_name(p));
    CHECK(back.ntm.scale[0] == 1.25f && back.text.tok_emb[7] == -3.5f);
    CHECK(train_model_save(&m, "/nonexistent/dir/model.safetensors", &err) != TL_OK);
    unlink(path);
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
    train_model_free(&m);
    train_model_free(&back);
}

int main(void) {
    tl_error err;
    snprintf(tiny, sizeof tiny, "%s/tailor-tiny", th_testdata());
    if (tl_backend_cpu_create(&be, 2, &err)) {
        printf("Bail out! %s\n", err.message);
        return 1;
    }
    RUN(param_set_declares_binds_and_refuses_mismatches);
    RUN(param_set_load_names_a_missing_tensor);
    RUN(model_load_refuses_a_checkpoint_without_tailor_parts);
    RUN(model_grads_exist_only_for_trained_parts);
    RUN(steps_refuse_bad_input);
    RUN(saved_weights_load_again);
    be->destroy(be);
    return th_done();
}
