/* Tests of the FAME-ViL parameter loader and the adapter/XAA forward passes against
 * tailor-tiny's float64 reference internals (testdata README, tailor-tiny T3, T5). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "config.h"
#include "harness.h"
#include "safetensors.h"
#include "tailor_params.h"
#include "test_util.h"

static char model_dir[1024];
static clip_config cfg; /* tailor-tiny's */

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] > b[i] ? (double)a[i] - b[i] : (double)b[i] - a[i];
        if (!(d <= m)) m = d; /* NaN counts as a failure */
    }
    return m;
}

/* A debug tensor of expected.safetensors as F32, with its shape. */
static const float *expected_f32(st_file *ex, const char *name, int64_t *shape, int ndim) {
    const st_tensor *t = st_find(ex, name);
    if (!t || t->ndim != ndim) return NULL;
    for (int i = 0; i < ndim; i++) shape[i] = t->shape[i];
    const float *out = NULL;
    tl_error err;
    return st_get_f32(ex, name, ndim, shape, &out, &err) ? NULL : out;
}

TEST(loads_every_part_of_tailor_tiny) {
    st_file *st = NULL;
    tl_error err;
    REQUIRE(st_open_dir(&st, model_dir, &err) == TL_OK);
    tailor_params *p = NULL;
    tl_status s = tailor_params_load(&p, &cfg, st, &err);
    CHECKF(s == TL_OK, "%s", err.message);
    if (p) {
        CHECKF(p->parts == 0x1ffu, "parts %#x", p->parts);
        CHECK(p->adapter_dim == 8 && p->xaa_dim == 8);
        CHECK(p->scr_classes == 5 && !strcmp(p->scr_labels[3], "skirts"));
        CHECK(p->vision.xaa[1].dq == cfg.vision.tower.hidden_size &&
              p->vision.xaa[1].dc == cfg.text.tower.hidden_size);
        CHECK(p->text.xaa[0].heads == cfg.text.tower.num_attention_heads);
        CHECK(p->head_scale[TL_TASK_XMR] > 3.9f && p->head_scale[TL_TASK_XMR] < 4.0f);
    }
    tailor_params_free(p);
    st_close(st);
}

static int drop_fic_head_and_xaa(const char *name) {
    return !strncmp(name, "heads.fic.", 10) || strstr(name, ".xaa.") != NULL;
}

static int drop_one_xaa(const char *name) {
    return !strcmp(name, "text_model.encoder.layers.1.xaa.v.bias");
}

/* Loads tailor-tiny's weights without the tensors drop() selects and with `shrink` one element
 * shorter, from a fresh temp dir (removed again); returns the status and fills p, whose views
 * point into *st (the caller closes both). */
static tl_status load_variant(int (*drop)(const char *), const char *shrink, tailor_params **p,
                              st_file **st, tl_error *err) {
    char dir[256];
    if (tu_make_temp_dir(dir, sizeof dir, "tl_adapters"))
        return tl_fail(err, TL_ERR_IO, "mkdtemp failed");
    tl_status s = TL_ERR_IO;
    tu_tensor_edit edit = {.drop = drop, .shrink = shrink};
    if (tu_write_variant(dir, model_dir, &edit) == TL_OK && st_open_dir(st, dir, err) == TL_OK)
        s = tailor_params_load(p, &cfg, *st, err);
    tu_remove_tree(dir);
    return s;
}

TEST(missing_parts_are_capabilities_not_errors) {
    tailor_params *p = NULL;
    st_file *st = NULL;
    tl_error err;
    tl_status s = load_variant(drop_fic_head_and_xaa, NULL, &p, &st, &err);
    CHECKF(s == TL_OK, "%s", err.message);
    REQUIRE(p);
    unsigned want = 0x1ffu & ~(unsigned)(TL_PART_XAA | TL_PART_HEAD_FIC);
    CHECKF(p->parts == want, "parts %#x want %#x", p->parts, want);
    CHECK(p->vision.xaa == NULL && p->text.xaa == NULL && p->fic_w == NULL);
    CHECK(p->scr_w != NULL && p->text.tsa[TL_TASK_FIC] != NULL);
    tailor_params_free(p);
    st_close(st);
}

TEST(partial_part_is_an_error_naming_the_tensor) {
    tailor_params *p = NULL;
    st_file *st = NULL;
    tl_error err;
    tl_status s = load_variant(drop_one_xaa, NULL, &p, &st, &err);
    CHECK(s == TL_ERR_NOT_FOUND && p == NULL);
    CHECKF(strstr(err.message, "text_model.encoder.layers.1.xaa.v.bias") != NULL, "%s",
           err.message);
    st_close(st);
}

TEST(wrong_adapter_shape_is_an_error_naming_the_tensor) {
    tailor_params *p = NULL;
    st_file *st = NULL;
    tl_error err;
    const char *name = "vision_model.encoder.layers.0.tsa.scr.up.weight";
    tl_status s = load_variant(NULL, name, &p, &st, &err);
    CHECK(s == TL_ERR_FORMAT && p == NULL);
    CHECKF(strstr(err.message, name) != NULL, "%s", err.message);
    st_close(st);
}

/* Runs one stream's XAA of layer l on the stored z' of both streams and compares output and
 * probabilities with the reference. */
static void check_xaa_layer(tl_backend *be, const tailor_params *p, st_file *ex,
                            const int *text_key_len, int l, int vision_queries) {
    const char *qs = vision_queries ? "vision" : "text", *ks = vision_queries ? "text" : "vision";
    char name[160];
    int64_t zs[3], ys[3], ps[4], os[3];
    snprintf(name, sizeof name, "debug.fusion.tgir.layer%d.%s_z_prime", l, qs);
    const float *zp = expected_f32(ex, name, zs, 3);
    snprintf(name, sizeof name, "debug.fusion.tgir.layer%d.%s_z_prime", l, ks);
    const float *y = expected_f32(ex, name, ys, 3);
    snprintf(name, sizeof name, "debug.fusion.tgir.layer%d.%s_xaa", l, qs);
    const float *want = expected_f32(ex, name, os, 3);
    snprintf(name, sizeof name, "debug.fusion.tgir.layer%d.%s_xaa_probs", l, qs);
    const float *want_probs = expected_f32(ex, name, ps, 4);
    REQUIRE(zp && y && want && want_probs);
    const xaa_params *x = vision_queries ? &p->vision.xaa[l] : &p->text.xaa[l];
    int B = (int)zs[0], Tq = (int)zs[1], Tk = (int)ys[1];
    REQUIRE(ps[1] == x->heads && ps[2] == Tq && ps[3] == Tk && zs[2] == x->dq && ys[2] == x->dc);
    size_t n_out = (size_t)B * Tq * x->dq, n_probs = (size_t)B * x->heads * Tq * Tk;
    float *out = calloc(n_out, sizeof *out), *probs = calloc(n_probs, sizeof *probs);
    float *scratch = malloc(xaa_scratch_floats(x, B, Tq, Tk) * sizeof(float));
    xaa_forward(be, x, out, zp, y, B, Tq, Tk, vision_queries ? text_key_len : NULL, probs, NULL,
                scratch);
    double d_out = max_abs_diff(out, want, n_out),
           d_probs = max_abs_diff(probs, want_probs, n_probs);
    CHECKF(d_out <= 1e-4, "layer %d %s xaa max abs %g", l, qs, d_out);
    CHECKF(d_probs <= 1e-4, "layer %d %s probs max abs %g", l, qs, d_probs);
    if (vision_queries) { /* masked text keys are exactly 0 */
        int masked_nonzero = 0;
        for (int b = 0; b < B; b++)
            for (size_t r = 0; r < (size_t)x->heads * Tq; r++)
                for (int j = text_key_len[b]; j < Tk; j++)
                    masked_nonzero += probs[((size_t)b * x->heads * Tq + r) * Tk + j] != 0.0f;
        CHECK(masked_nonzero == 0);
    }
    free(out);
    free(probs);
    free(scratch);
}

TEST(xaa_matches_reference_internals) {
    st_file *st = NULL, *ex = NULL, *in = NULL;
    tailor_params *p = NULL;
    tl_backend *be = NULL;
    tl_error err;
    char path[1200];
    REQUIRE(st_open_dir(&st, model_dir, &err) == TL_OK);
    snprintf(path, sizeof path, "%s/expected.safetensors", model_dir);
    REQUIRE(st_open(&ex, path, &err) == TL_OK);
    snprintf(path, sizeof path, "%s/inputs.safetensors", model_dir);
    REQUIRE(st_open(&in, path, &err) == TL_OK);
    REQUIRE(tailor_params_load(&p, &cfg, st, &err) == TL_OK);
    REQUIRE(tl_backend_cpu_create(&be, 2, &err) == TL_OK);
    const st_tensor *eos = st_find(in, "eos_index");
    REQUIRE(eos && st_numel(eos) == 4);
    int64_t eos_index[4];
    st_to_i64(eos, eos_index);
    int key_len[4];
    for (int b = 0; b < 4; b++) key_len[b] = (int)eos_index[b] + 1;
    for (int l = 0; l < cfg.vision.tower.num_hidden_layers; l++) {
        check_xaa_layer(be, p, ex, key_len, l, 1);
        check_xaa_layer(be, p, ex, key_len, l, 0);
    }
    be->destroy(be);
    tailor_params_free(p);
    st_close(in);
    st_close(ex);
    st_close(st);
}

int main(void) {
    snprintf(model_dir, sizeof model_dir, "%s/tailor-tiny", th_testdata());
    tl_error err;
    if (clip_config_load_dir(&cfg, model_dir, &err)) {
        printf("not ok 1 - config: %s\n1..1\n", err.message);
        return 1;
    }
    RUN(loads_every_part_of_tailor_tiny);
    RUN(missing_parts_are_capabilities_not_errors);
    RUN(partial_part_is_an_error_naming_the_tensor);
    RUN(wrong_adapter_shape_is_an_error_naming_the_tensor);
    RUN(xaa_matches_reference_internals);
    clip_config_free(&cfg);
    return th_done();
}
