/* Trains tailor-tiny (every part) for 20 AdamW steps on each task's fixed batch and checks
 * that the loss falls by at least half: the forward, backward, optimiser and clipping work
 * together. Also checks that an untrained part gets no gradient buffer and stays unchanged. */
#include <stdio.h>

#include "harness.h"
#include "optim.h"
#include "schedule.h"
#include "train_batches.h"

static tl_backend *be;
static st_file *inputs;
static char dir[4096];
static const char *current_task;

/* 20 steps of task with all parts trained; returns first and last loss. */
static int train_steps(const char *task, unsigned trained, int steps, double *first, double *last,
                       train_model *m) {
    tl_error err = {0};
    if (train_model_load(m, be, dir, trained, &err)) {
        printf("# load: %s\n", err.message);
        return 0;
    }
    param_set *sets[TRAIN_PART_COUNT];
    for (int p = 0; p < TRAIN_PART_COUNT; p++) sets[p] = &m->parts[p];
    lr_group_rule rules[] = {{"*.scale", 10.0, -1}};
    adamw opt;
    train_arena ar = {0};
    tt_batch b;
    lr_schedule sched = {SCHEDULE_COSINE, 3e-3, 2, 0.5, {0}, 0, 1, steps, 0.1};
    int ok = adamw_init(&opt, &(adamw_config){0.9, 0.999, 1e-8, 1e-5, 0}, sets, NULL,
                        TRAIN_PART_COUNT, rules, 1, &err) == TL_OK &&
             tt_batch_load(&b, inputs, m, task);
    for (int s = 0; ok && s <= steps; s++) {
        double loss;
        train_model_zero_grad(m);
        ok = tt_step(m, &ar, &b, task, NULL, &loss, &err) == TL_OK;
        if (s == 0) *first = loss;
        *last = loss;
        if (s == steps) break; /* the last forward only measures */
        grad_clip_global_norm(&opt, 5.0);
        adamw_step(&opt, schedule_lr(&sched, s));
    }
    if (!ok) printf("# %s: %s\n", task, err.message);
    adamw_free(&opt);
    tt_batch_free(&b);
    train_arena_free(&ar);
    return ok;
}

TEST(loss_halves_in_20_steps) {
    train_model m;
    double first = 0, last = 0;
    REQUIRE(train_steps(current_task, (1u << TRAIN_PART_COUNT) - 1, 20, &first, &last, &m));
    printf("# %s: loss %.4f -> %.4f\n", current_task, first, last);
    CHECKF(last <= 0.5 * first, "%s: loss %.4f -> %.4f", current_task, first, last);
    train_model_free(&m);
}

TEST(frozen_parts_stay_frozen) {
    train_model m, ref;
    double first = 0, last = 0;
    unsigned trained = 1u << TRAIN_PART_TSA_XMR | 1u << TRAIN_PART_HEAD_XMR;
    REQUIRE(train_steps("xmr", trained, 3, &first, &last, &m));
    tl_error err;
    REQUIRE(train_model_load(&ref, be, dir, 0, &err) == TL_OK);
    CHECK(m.parts[TRAIN_PART_CLIP].grad == NULL);
    CHECK(m.parts[TRAIN_PART_TSA_XMR].grad != NULL);
    const param_set *c = &m.parts[TRAIN_PART_CLIP], *cr = &ref.parts[TRAIN_PART_CLIP];
    CHECK(!memcmp(c->data, cr->data, c->total * sizeof(float)));
    const param_set *t = &m.parts[TRAIN_PART_TSA_XMR], *tr = &ref.parts[TRAIN_PART_TSA_XMR];
    CHECK(memcmp(t->data, tr->data, t->total * sizeof(float)) != 0);
    CHECK(last < first);
    train_model_free(&m);
    train_model_free(&ref);
}

int main(void) {
    tl_error err;
    char path[4200];
    snprintf(dir, sizeof dir, "%s/tailor-tiny", th_testdata());
    snprintf(path, sizeof path, "%s/inputs.safetensors", dir);
    if (tl_backend_cpu_create(&be, 2, &err) || st_open(&inputs, path, &err)) {
        printf("Bail out! %s\n", err.message);
        return 1;
    }
    char name[64];
    for (int t = 0; t < TT_TASKS; t++) {
        current_task = tt_tasks[t];
        snprintf(name, sizeof name, "loss of %s halves in 20 steps", current_task);
        th_run(name, loss_halves_in_20_steps);
    }
    RUN(frozen_parts_stay_frozen);
    st_close(inputs);
    be->destroy(be);
    return th_done();
}
