/* Distillation (train_distill): a teacher's forward-only run leaves gradients alone; with the
 * model as its own teacher the KD term adds the teacher's entropy to the loss and nothing to
 * the gradients; with another teacher the SCR head's bias gradient is the analytic one. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "train_batches.h"

static tl_backend *be;
static st_file *inputs;
static train_model model;
static train_arena arena;
static const char *current_task;

static size_t logits_count(const tt_batch *b, const char *task) {
    if (!strcmp(task, "scr")) return (size_t)b->B * model.scr_classes;
    if (!strcmp(task, "fic")) return (size_t)b->B * b->stride * model.text.vocab;
    return (size_t)b->B * b->B;
}

/* All gradients of every part, copied. */
static float *grads_copy(size_t *n) {
    *n = 0;
    for (int p = 0; p < TRAIN_PART_COUNT; p++) *n += model.parts[p].total;
    float *g = malloc(*n * sizeof *g);
    size_t at = 0;
    for (int p = 0; p < TRAIN_PART_COUNT; p++) {
        memcpy(g + at, model.parts[p].grad, model.parts[p].total * sizeof *g);
        at += model.parts[p].total;
    }
    return g;
}

/* Entropy of softmax over row r of z [rows, n] (column r when transposed). */
static double entropy(const float *z, int r, int n, int transposed) {
    double m = -INFINITY, s = 0, e = 0;
    for (int j = 0; j < n; j++) m = fmax(m, transposed ? z[j * n + r] : z[r * n + j]);
    for (int j = 0; j < n; j++) s += exp((transposed ? z[j * n + r] : z[r * n + j]) - m);
    for (int j = 0; j < n; j++) {
        double l = (transposed ? z[j * n + r] : z[r * n + j]) - m - log(s);
        e -= exp(l) * l;
    }
    return e;
}

/* Largest |g_a − g_b| over n values, and the largest |g_b|. */
static void compare(const float *a, const float *b, size_t n, double *worst, double *scale) {
    *worst = 0, *scale = 0;
    for (size_t i = 0; i < n; i++) {
        *worst = fmax(*worst, fabs(a[i] - b[i]));
        *scale = fmax(*scale, fabs(b[i]));
    }
}

/* The mean entropy of the teacher's rows (and columns for xmr), the KD term at teacher = self. */
static double teacher_entropy(const float *teacher, const tt_batch *b, const char *task) {
    int rows = b->B, n = b->B, sym = !strcmp(task, "xmr");
    if (!strcmp(task, "scr")) n = model.scr_classes;
    double h = 0;
    for (int r = 0; r < rows; r++)
        h += entropy(teacher, r, n, 0) + (sym ? entropy(teacher, r, n, 1) : 0);
    return h / rows / (sym ? 2 : 1);
}

TEST(self_distillation_adds_entropy_not_gradient) {
    const char *task = current_task;
    tt_batch b;
    tl_error err = {0};
    REQUIRE(tt_batch_load(&b, inputs, &model, task));
    size_t nl = logits_count(&b, task), ng;
    float *teacher = malloc(nl * sizeof *teacher);
    double plain = 0, with_kd = 0, teacher_loss = 0, worst, scale;
    train_model_zero_grad(&model);
    train_distill as_teacher = {NULL, teacher, 1}, student = {teacher, NULL, 0};
    int ok = tt_step(&model, &arena, &b, task, &as_teacher, &teacher_loss, &err) == TL_OK;
    float *zero = grads_copy(&ng);
    ok = ok && tt_step(&model, &arena, &b, task, NULL, &plain, &err) == TL_OK;
    float *g_plain = grads_copy(&ng);
    train_model_zero_grad(&model);
    ok = ok && tt_step(&model, &arena, &b, task, &student, &with_kd, &err) == TL_OK;
    float *g_kd = grads_copy(&ng);
    CHECKF(ok, "%s: %s", task, err.message);
    compare(zero, zero, ng, &worst, &scale);
    CHECKF(scale == 0, "%s: a forward-only run wrote gradients (%g)", task, scale);
    CHECK_NEAR(plain, teacher_loss, 1e-6);
    compare(g_kd, g_plain, ng, &worst, &scale);
    CHECKF(worst <= 1e-4 * scale, "%s: self-distillation moved gradients by %g (scale %g)", task,
           worst, scale);
    CHECKF(with_kd > plain, "%s: loss %g with KD, %g without", task, with_kd, plain);
    if (strcmp(task, "fic")) /* xmr/tgir/scr: the mean entropy of every row (and column) */
        CHECK_NEAR(with_kd - plain, teacher_entropy(teacher, &b, task), 1e-5);
    free(teacher), free(zero), free(g_plain), free(g_kd);
    tt_batch_free(&b);
}

/* SCR with a different teacher: d loss / d b_scr = Σ_r [(p_r − onehot_r) + (p_r − q_r)] / B. */
TEST(scr_bias_gradient_with_another_teacher) {
    tt_batch b;
    tl_error err = {0};
    REQUIRE(tt_batch_load(&b, inputs, &model, "scr"));
    int K = model.scr_classes, B = b.B;
    float *teacher = malloc((size_t)B * K * sizeof *teacher);
    float *logits = malloc((size_t)B * K * sizeof *logits);
    for (int i = 0; i < B * K; i++) teacher[i] = (float)((i * 37 % 11) - 5) * 0.4f;
    train_model_zero_grad(&model);
    train_distill kd = {teacher, logits, 0};
    double loss;
    int ok = tt_step(&model, &arena, &b, "scr", &kd, &loss, &err) == TL_OK;
    CHECKF(ok, "scr step: %s", err.message);
    for (int k = 0; k < K && ok; k++) {
        double want = 0;
        for (int r = 0; r < B; r++) {
            double zm = -INFINITY, zs = 0, tm = -INFINITY, ts = 0;
            for (int j = 0; j < K; j++) zm = fmax(zm, logits[r * K + j]);
            for (int j = 0; j < K; j++) tm = fmax(tm, teacher[r * K + j]);
            for (int j = 0; j < K; j++) zs += exp(logits[r * K + j] - zm);
            for (int j = 0; j < K; j++) ts += exp(teacher[r * K + j] - tm);
            double p = exp(logits[r * K + k] - zm) / zs, q = exp(teacher[r * K + k] - tm) / ts;
            want += (2 * p - (k == b.labels[r]) - q) / B;
        }
        CHECK_NEAR(model.scr_head.db[k], want, 1e-5);
    }
    free(teacher), free(logits);
    tt_batch_free(&b);
}

int main(void) {
    tl_error err;
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/tailor-tiny", th_testdata());
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (tl_backend_cpu_create(&be, 2, &err) || st_open(&inputs, path, &err) ||
        train_model_load(&model, be, dir, (1u << TRAIN_PART_COUNT) - 1, &err)) {
        printf("Bail out! %s\n", err.message);
        return 1;
    }
    const char *tasks[4] = {"xmr", "tgir", "scr", "fic"};
    char name[80];
    for (int t = 0; t < 4; t++) {
        current_task = tasks[t];
        snprintf(name, sizeof name, "%s: self-distillation adds entropy, not gradient", tasks[t]);
        th_run(name, self_distillation_adds_entropy_not_gradient);
    }
    RUN(scr_bias_gradient_with_another_teacher);
    train_model_free(&model);
    train_arena_free(&arena);
    st_close(inputs);
    be->destroy(be);
    return th_done();
}
