/* `refcheck_grads DIR`: the training backward against a tailor-tiny folder's reference
 * gradients (README T6/T8). For each task it runs the loss on the batch of inputs.safetensors,
 * then compares every parameter gradient with grads.TASK.safetensors within
 * max|g − ref| ≤ 1e-3·max|ref_t| + 1e-6·G (G = the file's largest |gradient|), and checks that
 * every parameter absent from the file got exactly zero. All sizes come from config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train_model.h"
#include "train_tasks.h"

static const char *dir;
static tl_backend *be;
static train_model model;
static train_arena arena;
static st_file *inputs;
static json_t *expected;

/* Tensor name of inputs.safetensors converted to int32 / float (caller frees); NULL if absent. */
static int32_t *input_i32(const char *name, size_t *n) {
    const st_tensor *t = st_find(inputs, name);
    if (!t) return NULL;
    *n = (size_t)st_numel(t);
    int64_t *v = malloc(*n * sizeof *v);
    int32_t *out = malloc(*n * sizeof *out);
    st_to_i64(t, v);
    for (size_t i = 0; i < *n; i++) out[i] = (int32_t)v[i];
    free(v);
    return out;
}

static float *input_f32(const char *name, size_t *n) {
    const st_tensor *t = st_find(inputs, name);
    if (!t) return NULL;
    *n = (size_t)st_numel(t);
    float *out = malloc(*n * sizeof *out);
    st_to_f32(t, out);
    return out;
}

/* rows[i] of a [?, row] table gathered into a fresh [n, row] buffer. */
static void *gather(const void *table, const int32_t *rows, size_t n, size_t row_bytes) {
    char *out = malloc(n * row_bytes + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * row_bytes, (const char *)table + (size_t)rows[i] * row_bytes, row_bytes);
    return out;
}

/* The batch of one task: images and texts gathered by the task's index lists. */
typedef struct batch {
    float *pixels, *pixels2; /* [B, C, S, S] (pixels2: TGIR targets) */
    int32_t *ids;            /* [B, stride] */
    int stride, B;
    int *labels;
} batch;

static size_t image_floats(void) {
    const tr_vision *v = &model.vision;
    return (size_t)v->channels * v->image_size * v->image_size;
}

static void batch_free(batch *b) {
    free(b->pixels), free(b->pixels2), free(b->ids), free(b->labels);
}

/* Images by the index list image_key (and image2_key), ids rows of ids_key picked by the
 * index list text_key (NULL: every row in order). Returns 0 when an input is missing. */
static int batch_load(batch *b, const char *image_key, const char *image2_key, const char *text_key,
                      const char *ids_key) {
    memset(b, 0, sizeof *b);
    size_t np = 0, nid = 0, ni = 0, nt = 0, ni2 = 0;
    float *pixels = input_f32("pixel_values", &np);
    int32_t *ids = input_i32(ids_key, &nid);
    int32_t *img = input_i32(image_key, &ni);
    int32_t *txt = text_key ? input_i32(text_key, &nt) : NULL;
    int32_t *img2 = image2_key ? input_i32(image2_key, &ni2) : NULL;
    int ok = pixels && ids && img && (!text_key || txt) && (!image2_key || img2);
    if (ok) {
        size_t image_bytes = image_floats() * sizeof(float);
        b->stride = (int)st_find(inputs, ids_key)->shape[1];
        b->B = (int)ni;
        b->pixels = gather(pixels, img, ni, image_bytes);
        if (img2) b->pixels2 = gather(pixels, img2, ni2, image_bytes);
        if (txt)
            b->ids = gather(ids, txt, nt, (size_t)b->stride * sizeof(int32_t));
        else
            b->ids = ids, ids = NULL;
    }
    free(pixels), free(ids), free(img), free(txt), free(img2);
    return ok;
}

/* Compares the model's gradients with grads.TASK.safetensors (T8), printing the worst. */
static void compare_grads(const char *task) {
    char path[4096];
    snprintf(path, sizeof path, "%s/grads.%s.safetensors", dir, task);
    st_file *ref = NULL;
    tl_error err;
    REQUIRE(st_open(&ref, path, &err) == TL_OK);
    double G = json_number_value(
        json_object_get(json_object_get(json_object_get(expected, "grads"), task), "grad_scale_G"));
    CHECKF(G > 0, "%s: expected.json has no grads.%s.grad_scale_G", task, task);
    double worst = 0;
    const char *worst_name = "";
    size_t present = 0;
    for (size_t i = 0; i < st_count(ref); i++) {
        const st_tensor *t = st_at(ref, i);
        size_t n = 0;
        const float *g = train_model_grad(&model, t->name, &n);
        CHECKF(g && n == (size_t)st_numel(t), "%s: no gradient for %s", task, t->name);
        if (!g || n != (size_t)st_numel(t)) continue;
        present++;
        double *v = malloc(n * sizeof *v + 8), max_ref = 0, max_err = 0;
        st_to_f64(t, v);
        for (size_t j = 0; j < n; j++) {
            max_ref = fmax(max_ref, fabs(v[j]));
            double d = fabs(g[j] - v[j]);
            max_err = isnan(d) ? INFINITY : fmax(max_err, d);
        }
        double tol = 1e-3 * max_ref + 1e-6 * G;
        CHECKF(max_err <= tol, "%s: %s max err %.3g > tol %.3g (max ref %.3g)", task, t->name,
               max_err, tol, max_ref);
        if (max_err / tol > worst) worst = max_err / tol, worst_name = t->name;
        free(v);
    }
    size_t absent = 0, nonzero = 0;
    for (int p = 0; p < TRAIN_PART_COUNT; p++) {
        const param_set *s = &model.parts[p];
        for (size_t i = 0; i < s->count; i++) {
            if (st_find(ref, s->tensors[i].name)) continue;
            absent++;
            const float *g = s->grad + s->tensors[i].offset;
            size_t bad = 0;
            for (size_t j = 0; j < s->tensors[i].numel; j++) bad += g[j] != 0;
            CHECKF(!bad, "%s: %s is absent from the reference but has %zu non-zero values", task,
                   s->tensors[i].name, bad);
            nonzero += bad != 0;
        }
    }
    printf("# %s: %zu gradients compared (worst %s at %.3g of its tolerance, G = %.3g), "
           "%zu absent parameters, %zu of them non-zero\n",
           task, present, worst_name, worst, G, absent, nonzero);
    st_close(ref);
}

static void check_loss(const char *task, double loss) {
    double want = json_number_value(json_object_get(json_object_get(expected, "losses"), task));
    CHECKF(fabs(loss - want) <= 1e-4, "%s loss %.9g, reference %.9g", task, loss, want);
}

/* Zeroes every gradient, runs step (the task's loss and backward), checks loss and gradients. */
static void run_task(const char *task, tl_status (*step)(const batch *, double *, tl_error *),
                     const char *image_key, const char *image2_key, const char *text_key,
                     const char *ids_key) {
    batch b;
    REQUIRE(batch_load(&b, image_key, image2_key, text_key, ids_key));
    train_model_zero_grad(&model);
    double loss = 0;
    tl_error err = {0};
    tl_status st = step(&b, &loss, &err);
    CHECKF(st == TL_OK, "%s step: %s", task, err.message);
    if (!st) {
        check_loss(task, loss);
        compare_grads(task);
    }
    batch_free(&b);
}

static tl_status xmr_step(const batch *b, double *loss, tl_error *err) {
    return train_xmr_step(&model, &arena, b->pixels, b->ids, b->stride, b->B, loss, err);
}

static tl_status tgir_step(const batch *b, double *loss, tl_error *err) {
    return train_tgir_step(&model, &arena, b->pixels, b->ids, b->stride, b->pixels2, b->B, loss,
                           err);
}

static tl_status scr_step(const batch *b, double *loss, tl_error *err) {
    size_t n = 0;
    int32_t *labels = input_i32("scr_label", &n);
    if (!labels) return tl_fail(err, TL_ERR_NOT_FOUND, "inputs: no scr_label");
    tl_status st =
        train_scr_step(&model, &arena, b->pixels, b->ids, b->stride, labels, b->B, loss, err);
    free(labels);
    return st;
}

static tl_status fic_step(const batch *b, double *loss, tl_error *err) {
    return train_fic_step(&model, &arena, b->pixels, b->ids, b->B, b->stride, loss, err);
}

TEST(grads_xmr) {
    run_task("xmr", xmr_step, "xmr_image", NULL, "xmr_text", "input_ids");
}

TEST(grads_tgir) {
    run_task("tgir", tgir_step, "tgir_ref", "tgir_target", "tgir_text", "input_ids");
}

TEST(grads_scr) {
    run_task("scr", scr_step, "scr_image", NULL, "scr_text", "input_ids");
}

TEST(grads_fic) {
    run_task("fic", fic_step, "fic_image", NULL, NULL, "fic_ids");
}

TEST(grads_ntm) {
    size_t nx = 0, ng = 0;
    float *x = input_f32("ntm_x", &nx), *g = input_f32("ntm_gallery", &ng);
    REQUIRE(x && g);
    const st_tensor *t = st_find(inputs, "ntm_x");
    train_model_zero_grad(&model);
    double loss = 0;
    tl_error err = {0};
    tl_status st =
        train_ntm_step(&model, &arena, x, g, (int)t->shape[0], (int)t->shape[1], &loss, &err);
    CHECKF(st == TL_OK, "ntm step: %s", err.message);
    if (!st) {
        check_loss("ntm", loss);
        compare_grads("ntm");
    }
    free(x), free(g);
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--help")) {
        printf("usage: refcheck_grads DIR\nChecks training gradients against DIR's "
               "grads.TASK.safetensors (tailor-tiny) and prints TAP.\n");
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: refcheck_grads DIR\n");
        return 2;
    }
    dir = argv[1];
    tl_error err;
    char path[4096];
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    json_error_t je;
    snprintf(path, sizeof path, "%s/expected.json", dir);
    expected = json_load_file(path, 0, &je);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (!expected || tl_backend_cpu_create(&be, 2, &err) || st_open(&inputs, path, &err) ||
        train_model_load(&model, be, dir, (1u << TRAIN_PART_COUNT) - 1, &err)) {
        printf("Bail out! %s: %s\n", dir, expected ? err.message : je.text);
        return 1;
    }
    RUN(grads_xmr);
    RUN(grads_tgir);
    RUN(grads_scr);
    RUN(grads_fic);
    RUN(grads_ntm);
    train_model_free(&model);
    train_arena_free(&arena);
    st_close(inputs);
    json_decref(expected);
    be->destroy(be);
    return th_done();
}
