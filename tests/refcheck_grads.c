/* `refcheck_grads DIR`: the training backward against a tailor-tiny folder's reference
 * gradients (README T6/T8). For each task it runs the loss on the batch of inputs.safetensors,
 * then compares every parameter gradient with grads.TASK.safetensors within
 * max|g − ref| ≤ 1e-3·max|ref_t| + 1e-6·G (G = expected.json's grad_scale_G), and checks that
 * every parameter absent from the file got exactly zero. All sizes come from config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "train_model.h"
#include "train_batches.h"
#include "train_tasks.h"

static const char *dir;
static tl_backend *be;
static train_model model;
static train_arena arena;
static st_file *inputs;
static json_t *expected;

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

/* Zeroes every gradient, runs the task's loss and backward on its batch, checks both. */
static void check_task(const char *task) {
    tt_batch b;
    REQUIRE(tt_batch_load(&b, inputs, &model, task));
    train_model_zero_grad(&model);
    double loss = 0;
    tl_error err = {0};
    tl_status st = tt_step(&model, &arena, &b, task, NULL, &loss, &err);
    CHECKF(st == TL_OK, "%s step: %s", task, err.message);
    if (!st) {
        check_loss(task, loss);
        compare_grads(task);
    }
    tt_batch_free(&b);
}

static const char *current_task;

TEST(task_gradients) {
    check_task(current_task);
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
    tl_error err = {0};
    char path[4096];
    json_error_t je;
    snprintf(path, sizeof path, "%s/expected.json", dir);
    expected = json_load_file(path, 0, &je);
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (!expected || tl_backend_cpu_create(&be, 2, &err) || st_open(&inputs, path, &err) ||
        train_model_load(&model, be, dir, (1u << TRAIN_PART_COUNT) - 1, &err)) {
        printf("Bail out! %s: %s\n", dir, expected ? err.message : je.text);
        return 1;
    }
    char name[64];
    for (int t = 0; t < TT_TASKS; t++) {
        current_task = tt_tasks[t];
        snprintf(name, sizeof name, "gradients of loss.%s", current_task);
        th_run(name, task_gradients);
    }
    train_model_free(&model);
    train_arena_free(&arena);
    st_close(inputs);
    json_decref(expected);
    be->destroy(be);
    return th_done();
}
