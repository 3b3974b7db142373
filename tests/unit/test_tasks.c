/* Tests of the FAME-ViL task API: the cached caption decoder against full recomputation, its
 * bfloat16 variant (decode_bf16) against fp32, the beam search rule, capability reporting on
 * checkpoints lacking parts, load errors, and the zero-shot fallbacks on plain CLIP (tailor-tiny
 * and clip-tiny of the test vectors). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "beam.h"
#include "harness.h"
#include "model_internal.h"
#include "tailor_model.h"
#include "test_util.h"

static char tailor_dir[1024], clip_dir[1024];

/* ---- helpers ---- */

/* tailor-tiny's input images (pixel_values of inputs.safetensors; caller frees): *n images of
 * *per floats, m's image size. NULL (and *n = 0) when missing. */
static float *input_pixels(const tl_model *m, int *n, size_t *per) {
    const tl_model_info *info = tl_model_get_info(m);
    *per = 3 * (size_t)info->image_size * info->image_size;
    *n = 0;
    char path[1200];
    snprintf(path, sizeof path, "%s/inputs.safetensors", tailor_dir);
    st_file *f = NULL;
    tl_error err;
    if (st_open(&f, path, &err)) return NULL;
    const st_tensor *t = st_find(f, "pixel_values");
    float *out = t ? malloc((size_t)st_numel(t) * sizeof *out) : NULL;
    if (out) st_to_f32(t, out);
    if (out) *n = (int)((size_t)st_numel(t) / *per);
    st_close(f);
    return out;
}

typedef struct step_logits {
    int V, steps;
    float *rows; /* [steps, V]: the logits of hypothesis 0 at each position */
} step_logits;

static void keep_step_logits(void *ctx, const char *name, const float *data, const int *dims,
                             int ndim) {
    step_logits *s = ctx;
    int pos;
    if (sscanf(name, "caption.step%d.logits", &pos) != 1 || ndim != 2 || dims[1] != s->V) return;
    if (pos >= s->steps) return;
    memcpy(s->rows + (size_t)pos * s->V, data, (size_t)s->V * sizeof *data);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* ---- decoder ---- */

TEST(cached_decoding_equals_full_recomputation) {
    tl_model *m = tu_open_model(tailor_dir);
    REQUIRE(m);
    tl_error err;
    int n_images;
    size_t per;
    float *pixels = input_pixels(m, &n_images, &per);
    int V = tl_model_get_info(m)->vocab_size, limit = 12;
    step_logits s = {V, limit, malloc((size_t)limit * V * sizeof(float))};
    float *full = malloc((size_t)limit * V * sizeof(float));
    CHECK(pixels && n_images > 0 && s.rows && full);
    for (int i = 0; i < n_images && s.rows && full; i++) {
        int32_t ids[12];
        int n = 0;
        tl_caption_opts opts = {.beam = 1, .max_tokens = limit};
        tl_model_set_trace(m, keep_step_logits, &s);
        tl_status st = tl_caption_pixels(m, pixels + i * per, &opts, ids, limit, &n, &err);
        tl_model_set_trace(m, NULL, NULL);
        CHECKF(st == TL_OK && n >= 2 && n <= limit, "image %d: %s", i, err.message);
        if (st || n < 2 || n > limit) break;
        CHECK(ids[0] == V - 2);
        CHECK(n == limit || ids[n - 1] == V - 1);
        st = tl_fic_forward(m, pixels + i * per, ids, n, 1, NULL, full, &err);
        CHECKF(st == TL_OK, "image %d: %s", i, err.message);
        if (st) break;
        double worst = 0;
        for (int p = 0; p + 1 < n; p++) {
            const float *row = full + (size_t)p * V;
            CHECKF(argmax(row, V) == ids[p + 1], "image %d position %d", i, p);
            for (int v = 0; v < V; v++)
                worst = fmax(worst, fabs(row[v] - s.rows[(size_t)p * V + v]));
        }
        CHECKF(worst <= 1e-5, "image %d: cached vs full logits differ by %g", i, worst);
    }
    free(s.rows);
    free(full);
    free(pixels);
    tl_model_close(m);
}

/* ---- bfloat16 decoding (decode_bf16) ---- */

/* A greedy caption (limit 12) and the step logits of hypothesis 0. */
typedef struct caption_run {
    int32_t ids[12];
    int n;
    float *steps; /* [12, V] */
} caption_run;

static int caption_with_logits(tl_model *m, const float *pixels, caption_run *run, int V) {
    step_logits s = {V, 12, run->steps};
    tl_caption_opts opts = {.beam = 1, .max_tokens = 12};
    tl_error err;
    tl_model_set_trace(m, keep_step_logits, &s);
    tl_status st = tl_caption_pixels(m, pixels, &opts, run->ids, 12, &run->n, &err);
    tl_model_set_trace(m, NULL, NULL);
    CHECKF(st == TL_OK, "%s", err.message);
    return st == TL_OK;
}

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

/* max |a - b| over n values, as a fraction of max |ref|. */
static double relative_gap(const float *a, const float *b, const float *ref, size_t n) {
    double gap = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        gap = fmax(gap, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs(ref[i]));
    }
    return gap / scale;
}

/* bfloat16 keeps 8 significant bits; on tailor-tiny the step logits move by about 1% of their
 * largest magnitude. */
#define BF16_LOGIT_TOL 0.02

/* One image on m32 (fp32) and m16 (decode_bf16): equal greedy and beam-3 captions; the bf16
 * step logits within BF16_LOGIT_TOL of fp32's (yet not equal: the copies are used) and of fp32
 * teacher forcing on the caption (full recomputation). full: [12, V] scratch. */
static void compare_bf16_caption(tl_model *m32, tl_model *m16, const float *px, int image, int V,
                                 caption_run *r32, caption_run *r16, float *full) {
    tl_error err;
    if (!caption_with_logits(m32, px, r32, V) || !caption_with_logits(m16, px, r16, V)) return;
    REQUIRE(same_ids(r16->ids, r16->n, r32->ids, r32->n));
    size_t cells = (size_t)(r16->n - 1) * V; /* steps that chose a token */
    double gap = relative_gap(r16->steps, r32->steps, r32->steps, cells);
    CHECKF(gap > 0 && gap <= BF16_LOGIT_TOL, "image %d: bf16 step logits off by %g", image, gap);
    REQUIRE(tl_fic_forward(m16, px, r16->ids, r16->n, 1, NULL, full, &err) == TL_OK);
    gap = relative_gap(r16->steps, full, full, cells);
    CHECKF(gap <= BF16_LOGIT_TOL, "image %d: bf16 vs full recomputation %g", image, gap);
    tl_caption_opts beam = {.beam = 3, .max_tokens = 12};
    CHECK(tl_caption_pixels(m32, px, &beam, r32->ids, 12, &r32->n, &err) == TL_OK);
    CHECK(tl_caption_pixels(m16, px, &beam, r16->ids, 12, &r16->n, &err) == TL_OK);
    CHECKF(same_ids(r16->ids, r16->n, r32->ids, r32->n), "image %d: bf16 beam differs", image);
}

TEST(bf16_decoding_stays_near_fp32) {
    tl_model *m32 = tu_open_model(tailor_dir), *m16 = NULL;
    tl_error err;
    tl_model_opts opts = {.decode_bf16 = 1};
    REQUIRE(m32);
    CHECKF(tl_model_open(&m16, tailor_dir, &opts, &err) == TL_OK, "%s", err.message);
    if (!m16) {
        tl_model_close(m32);
        return;
    }
    const clip_tower *t = &m16->w.text.tower;
    size_t D = t->width, I = t->mlp, V = m16->w.text.vocab;
    CHECK(tl_model_get_info(m32)->decode_bf16_bytes == 0);
    tl_model *plain = NULL; /* nothing to decode: opens without copies */
    CHECKF(tl_model_open(&plain, clip_dir, &opts, &err) == TL_OK, "%s", err.message);
    CHECK(plain && tl_model_get_info(plain)->decode_bf16_bytes == 0);
    tl_model_close(plain);
    CHECK(tl_model_get_info(m16)->decode_bf16_bytes ==
          2 * (t->n_layers * (5 * D * D + 2 * D * I) + V * D));
    int n_images;
    size_t per;
    float *pixels = input_pixels(m32, &n_images, &per), *full = malloc(12 * V * sizeof *full);
    caption_run r32 = {.steps = malloc(12 * V * sizeof(float))},
                r16 = {.steps = malloc(12 * V * sizeof(float))};
    CHECK(pixels && n_images > 0 && full && r32.steps && r16.steps);
    for (int i = 0; i < n_images && full && r32.steps && r16.steps; i++)
        compare_bf16_caption(m32, m16, pixels + i * per, i, (int)V, &r32, &r16, full);
    free(r32.steps), free(r16.steps), free(full), free(pixels);
    tl_model_close(m16);
    tl_model_close(m32);
}

/* A toy language model over 4 tokens (SOS 2, EOS 3): after SOS, token 0 (p .6) or 1 (p .4);
 * after 0 the next token is uncertain (uniform over 0, 1, EOS: p 1/3 each), after 1 EOS is
 * near certain. Greedy takes 0; a beam of 2 finds 1, EOS with a higher score. */
static tl_status toy_step(void *ctx, const int32_t *tokens, int n, int pos, float *logits,
                          tl_error *err) {
    for (int b = 0; b < n; b++) {
        float *row = logits + (size_t)b * 4;
        float sos[4] = {logf(0.6f), logf(0.4f), -30, -30}, after0[4] = {0, 0, -30, 0},
              after1[4] = {-30, -30, -30, 0};
        const float *src = tokens[b] == 2 ? sos : tokens[b] == 0 ? after0 : after1;
        memcpy(row, src, sizeof sos);
    }
    return TL_OK;
}

static void toy_reorder(void *ctx, const int *parent, int n) {}

TEST(beam_search_rule) {
    caption_stepper toy = {NULL, toy_step, toy_reorder};
    int32_t ids[4];
    int n = 0;
    tl_error err;
    caption_search greedy = {4, 2, 3, 4, 1};
    REQUIRE(caption_search_run(&greedy, &toy, ids, &n, &err) == TL_OK);
    CHECKF(n >= 2 && ids[0] == 2 && ids[1] == 0, "greedy took %d", n > 1 ? ids[1] : -1);
    caption_search beam = {4, 2, 3, 4, 2};
    REQUIRE(caption_search_run(&beam, &toy, ids, &n, &err) == TL_OK);
    CHECKF(n == 3 && ids[0] == 2 && ids[1] == 1 && ids[2] == 3, "beam: n %d", n);
    caption_search bad = {4, 2, 3, 1, 1};
    CHECK(caption_search_run(&bad, &toy, ids, &n, &err) == TL_ERR_INVALID);
}

TEST(beam_captions_are_well_formed) {
    tl_model *m = tu_open_model(tailor_dir);
    REQUIRE(m);
    tl_error err;
    int n_images;
    size_t per;
    float *pixels = input_pixels(m, &n_images, &per);
    REQUIRE(pixels);
    int V = tl_model_get_info(m)->vocab_size;
    for (int i = 0; i < n_images; i++) {
        const float *px = pixels + (size_t)i * per;
        int32_t greedy[12], beam1[12], beam3[12];
        int n_greedy = 0, n1 = 0, n3 = 0;
        tl_caption_opts g = {.beam = 0, .max_tokens = 12}, b1 = {.beam = 1, .max_tokens = 12},
                        b3 = {.beam = 3, .max_tokens = 12};
        CHECK(tl_caption_pixels(m, px, &g, greedy, 12, &n_greedy, &err) == TL_OK);
        CHECK(tl_caption_pixels(m, px, &b1, beam1, 12, &n1, &err) == TL_OK);
        CHECK(n1 == n_greedy && !memcmp(greedy, beam1, (size_t)n1 * sizeof *beam1));
        CHECKF(tl_caption_pixels(m, px, &b3, beam3, 12, &n3, &err) == TL_OK, "%s", err.message);
        CHECK(n3 >= 2 && n3 <= 12 && beam3[0] == V - 2);
        for (int k = 1; k + 1 < n3; k++) CHECK(beam3[k] != V - 1 && beam3[k] >= 0 && beam3[k] < V);
        CHECK(tl_caption_pixels(m, px, &b3, beam3, 11, &n3, &err) == TL_ERR_LIMIT);
    }
    free(pixels);
    tl_model_close(m);
}

/* ---- checkpoints lacking parts ---- */

/* Copies tailor-tiny's config.json and its weights without the tensors drop() selects, and
 * with `shrink` (may be NULL) one element shorter, into a new temp dir written to dir (size
 * 256; remove it with tu_remove_tree). Returns 1 on success. */
static int write_variant(char *dir, int (*drop)(const char *), const char *shrink) {
    if (tu_make_temp_dir(dir, 256, "tl_tasks")) return 0;
    char src[1200], dst[1200];
    snprintf(src, sizeof src, "%s/config.json", tailor_dir);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    tu_tensor_edit edit = {.drop = drop, .shrink = shrink};
    return !tu_copy_file(src, dst) && tu_write_variant(dir, tailor_dir, &edit) == TL_OK;
}

static int drop_fic_head_and_xaa(const char *name) {
    return !strncmp(name, "heads.fic.", 10) || strstr(name, ".xaa.") != NULL;
}

/* A small grey image (caller frees rgb). */
static tl_image grey_image(int w, int h) {
    tl_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int i = 0; img.rgb && i < w * h * 3; i++) img.rgb[i] = (uint8_t)(i * 7 % 251);
    return img;
}

TEST(capabilities_follow_present_parts) {
    char dir[256];
    REQUIRE(write_variant(dir, drop_fic_head_and_xaa, NULL));
    tl_model *m = NULL;
    tl_error err;
    tl_status st = tl_model_open(&m, dir, NULL, &err);
    CHECKF(st == TL_OK, "%s", err.message);
    if (m) {
        CHECKF(tl_model_capabilities(m) == (TL_CAP_XMR | TL_CAP_NTM), "caps %#x",
               tl_model_capabilities(m));
        tl_image img = grey_image(40, 30);
        const tl_model_info *info = tl_model_get_info(m);
        float *v = malloc((size_t)info->projection_dim * sizeof *v);
        CHECK(tl_embed_images_task(m, TL_TASK_XMR, &img, 1, v, &err) == TL_OK);
        double norm = 0;
        for (int i = 0; i < info->projection_dim; i++) norm += (double)v[i] * v[i];
        CHECK_NEAR(norm, 1.0, 1e-5);
        int32_t ids[77];
        int n = 0;
        char text[64];
        st = tl_caption(m, &img, NULL, ids, 77, &n, text, sizeof text, &err);
        CHECK(st == TL_ERR_UNAVAILABLE && n == 0);
        CHECKF(strstr(err.message, "captioning not available") && strstr(err.message, "fic head") &&
                   strstr(err.message, "cross-attention"),
               "%s", err.message);
        float fused[64];
        st = tl_fuse_ids(m, TL_TASK_TGIR, NULL, ids, 77, 0, NULL, NULL, fused, &err);
        CHECKF(st == TL_ERR_UNAVAILABLE && strstr(err.message, "cross-attention"), "%s",
               err.message);
        float probs[8];
        st = tl_classify(m, &img, "a dress", NULL, 0, probs, &err);
        CHECKF(st == TL_ERR_UNAVAILABLE && strstr(err.message, "scr"), "%s", err.message);
        const char *const *labels;
        CHECK(tl_scr_labels(m, &labels) == 5 && labels && !strcmp(labels[0], "dresses"));
        free(img.rgb);
        free(v);
        tl_model_close(m);
    }
    tu_remove_tree(dir);
}

TEST(wrong_adapter_shape_fails_to_load) {
    char dir[256];
    const char *name = "text_model.encoder.layers.1.tsa.tgir.down.weight";
    REQUIRE(write_variant(dir, NULL, name));
    tl_model *m = NULL;
    tl_error err;
    tl_status st = tl_model_open(&m, dir, NULL, &err);
    CHECK(st == TL_ERR_FORMAT && m == NULL);
    CHECKF(strstr(err.message, name) != NULL, "%s", err.message);
    tu_remove_tree(dir);
}

/* ---- zero-shot fallbacks on plain CLIP ---- */

static void normalize(float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)x[i] * x[i];
    for (int i = 0; i < n; i++) x[i] = (float)(x[i] / sqrt(s));
}

TEST(plain_clip_runs_zero_shot) {
    tl_model *m = tu_open_model(clip_dir);
    REQUIRE(m);
    tl_error err;
    CHECK(tl_model_capabilities(m) == 0);
    int P = tl_model_get_info(m)->projection_dim;
    char path[1200];
    snprintf(path, sizeof path, "%s/images/a_landscape_rgb_200x120.png", clip_dir);
    tl_image img = {0};
    REQUIRE(img_load_file(path, NULL, &img, &err) == TL_OK);
    const char *text[1] = {"a red summer dress"};
    float *q = malloc(4 * (size_t)P * sizeof *q), *v = q + P, *t = q + 2 * P, *want = q + 3 * P;
    CHECKF(tl_compose(m, &img, text, 1, q, &err) == TL_OK, "%s", err.message);
    REQUIRE(tl_embed_images(m, &img, 1, v, &err) == TL_OK);
    REQUIRE(tl_embed_texts(m, text, 1, t, &err) == TL_OK);
    for (int i = 0; i < P; i++) want[i] = v[i] + t[i];
    normalize(want, P);
    for (int i = 0; i < P; i++) CHECK_NEAR(q[i], want[i], 1e-6);

    const char *labels[3] = {"dress", "sneaker", "jacket"};
    float probs[3], sims[3];
    CHECKF(tl_classify(m, &img, "x", labels, 3, probs, &err) == TL_OK, "%s", err.message);
    for (int k = 0; k < 3; k++) {
        char prompt[64];
        snprintf(prompt, sizeof prompt, "a photo of a %s", labels[k]);
        const char *pt[1] = {prompt};
        REQUIRE(tl_embed_texts(m, pt, 1, t, &err) == TL_OK);
        double dot = 0;
        for (int i = 0; i < P; i++) dot += (double)v[i] * t[i];
        sims[k] = (float)(tl_model_logit_scale(m) * dot);
    }
    double z = 0;
    for (int k = 0; k < 3; k++) z += exp(sims[k] - sims[0]);
    for (int k = 0; k < 3; k++) CHECK_NEAR(probs[k], exp(sims[k] - sims[0]) / z, 1e-5);
    CHECK(tl_classify(m, &img, "x", NULL, 0, probs, &err) == TL_ERR_UNAVAILABLE);
    int32_t ids[77];
    int n = 0;
    CHECK(tl_caption(m, &img, NULL, ids, 77, &n, NULL, 0, &err) == TL_ERR_UNAVAILABLE);
    CHECKF(strstr(err.message, "captioning not available: checkpoint has no") != NULL, "%s",
           err.message);
    CHECK(tl_embed_images_task(m, TL_TASK_XMR, &img, 1, q, &err) == TL_ERR_UNAVAILABLE);
    free(q);
    img_free(&img);
    tl_model_close(m);
}

int main(void) {
    snprintf(tailor_dir, sizeof tailor_dir, "%s/tailor-tiny", th_testdata());
    snprintf(clip_dir, sizeof clip_dir, "%s/clip-tiny", th_testdata());
    RUN(cached_decoding_equals_full_recomputation);
    RUN(bf16_decoding_stays_near_fp32);
    RUN(beam_search_rule);
    RUN(beam_captions_are_well_formed);
    RUN(capabilities_follow_present_parts);
    RUN(wrong_adapter_shape_fails_to_load);
    RUN(plain_clip_runs_zero_shot);
    return th_done();
}
