/* AdamW (against the update rule written out in double), parameter groups, no decay on
 * biases, global-norm clipping, and the warm-up / multi-step / cosine schedules. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "optim.h"
#include "schedule.h"

/* A set with "layer.weight" [2, 3] and "layer.bias" [3], gradients on. */
static void make_set(param_set *s, float **w, float **gw, float **b, float **gb) {
    tl_error err;
    memset(s, 0, sizeof *s);
    for (int pass = 0; pass < 2; pass++) {
        param_set_tensor(s, w, gw, 2, (const int64_t[]){2, 3}, "layer.weight", &err);
        param_set_tensor(s, b, gb, 1, (const int64_t[]){3}, "layer.bias", &err);
        if (!pass) param_set_allocate(s, 1, &err);
    }
}

TEST(adamw_matches_the_update_rule) {
    param_set s;
    float *w, *gw, *b, *gb;
    make_set(&s, &w, &gw, &b, &gb);
    for (int i = 0; i < 6; i++) w[i] = 0.5f - 0.2f * i, gw[i] = 0.3f * (i - 2.5f);
    for (int i = 0; i < 3; i++) b[i] = 1.0f, gb[i] = -0.1f * (i + 1);
    adamw_config cfg = {0.9, 0.999, 1e-8, 0.01, 0};
    lr_group_rule rules[] = {{"*.bias", 2.0, -1}};
    param_set *sets[] = {&s};
    double set_mult[] = {0.5};
    adamw opt;
    tl_error err;
    REQUIRE(adamw_init(&opt, &cfg, sets, set_mult, 1, rules, 1, &err) == TL_OK);
    double wr[6], br[3], mw[6] = {0}, vw[6] = {0}, mb[3] = {0}, vb[3] = {0};
    for (int i = 0; i < 6; i++) wr[i] = w[i];
    for (int i = 0; i < 3; i++) br[i] = b[i];
    for (int t = 1; t <= 3; t++) {
        adamw_step(&opt, 1e-2);
        double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
        for (int i = 0; i < 6; i++) { /* weights: decayed, the set's multiplier 0.5 */
            mw[i] = 0.9 * mw[i] + 0.1 * gw[i], vw[i] = 0.999 * vw[i] + 0.001 * gw[i] * gw[i];
            wr[i] -= 0.5e-2 * (mw[i] / bc1 / (sqrt(vw[i] / bc2) + 1e-8) + 0.01 * wr[i]);
        }
        for (int i = 0; i < 3; i++) { /* biases (1-D): no decay, the rule's multiplier 2 */
            mb[i] = 0.9 * mb[i] + 0.1 * gb[i], vb[i] = 0.999 * vb[i] + 0.001 * gb[i] * gb[i];
            br[i] -= 2e-2 * (mb[i] / bc1 / (sqrt(vb[i] / bc2) + 1e-8));
        }
    }
    for (int i = 0; i < 6; i++) CHECK_NEAR(w[i], wr[i], 1e-6);
    for (int i = 0; i < 3; i++) CHECK_NEAR(b[i], br[i], 1e-6);
    CHECK(opt.steps == 3);
    adamw_free(&opt);
    param_set_free(&s);
}

TEST(sets_without_gradients_are_skipped) {
    param_set frozen = {0}, trained;
    float *w, *gw, *b, *gb, *fw;
    tl_error err;
    param_set_tensor(&frozen, &fw, NULL, 1, (const int64_t[]){4}, "frozen.weight", &err);
    param_set_allocate(&frozen, 0, &err);
    param_set_tensor(&frozen, &fw, NULL, 1, (const int64_t[]){4}, "frozen.weight", &err);
    make_set(&trained, &w, &gw, &b, &gb);
    param_set *sets[] = {&frozen, &trained};
    adamw opt;
    REQUIRE(adamw_init(&opt, &(adamw_config){0.9, 0.999, 1e-8, 0, 0}, sets, NULL, 2, NULL, 0,
                       &err) == TL_OK);
    CHECK(opt.n_sets == 1 && opt.sets[0].params == &trained);
    fw[0] = 3;
    gw[0] = 1;
    adamw_step(&opt, 0.1);
    CHECK(fw[0] == 3);
    CHECK_NEAR(w[0], -0.1, 1e-6); /* first step: lr · g/|g| */
    adamw_free(&opt);
    param_set_free(&frozen);
    param_set_free(&trained);
}

/* With zero gradients only decay moves a value: θ ← θ − lr·wd·θ. */
TEST(weight_decay_rules) {
    param_set s;
    float *w, *gw, *b, *gb;
    tl_error err;
    make_set(&s, &w, &gw, &b, &gb);
    param_set *sets[] = {&s};
    adamw opt;
    for (int i = 0; i < 6; i++) w[i] = 1;
    for (int i = 0; i < 3; i++) b[i] = 1;
    REQUIRE(adamw_init(&opt, &(adamw_config){0.9, 0.999, 1e-8, 0.1, 1}, sets, NULL, 1, NULL, 0,
                       &err) == TL_OK);
    adamw_step(&opt, 1.0);
    CHECK_NEAR(w[0], 0.9, 1e-6);
    CHECK_NEAR(b[0], 0.9, 1e-6); /* decay_1d: biases decay too */
    adamw_free(&opt);
    lr_group_rule rules[] = {{"layer.weight", 1.0, 0.5}};
    REQUIRE(adamw_init(&opt, &(adamw_config){0.9, 0.999, 1e-8, 0.1, 0}, sets, NULL, 1, rules, 1,
                       &err) == TL_OK);
    adamw_step(&opt, 1.0);
    CHECK_NEAR(w[0], 0.45, 1e-6); /* the group's own decay 0.5 */
    CHECK_NEAR(b[0], 0.9, 1e-6);  /* 1-D: no decay */
    adamw_free(&opt);
    param_set_free(&s);
}

TEST(global_norm_clipping) {
    param_set s;
    float *w, *gw, *b, *gb;
    tl_error err;
    make_set(&s, &w, &gw, &b, &gb);
    gw[0] = 3, gb[2] = 4; /* norm 5 */
    param_set *sets[] = {&s};
    adamw opt;
    REQUIRE(adamw_init(&opt, &(adamw_config){0.9, 0.999, 1e-8, 0, 0}, sets, NULL, 1, NULL, 0,
                       &err) == TL_OK);
    CHECK_NEAR(grad_global_norm(&opt), 5, 1e-6);
    CHECK_NEAR(grad_clip_global_norm(&opt, 10), 5, 1e-6); /* under the limit: unchanged */
    CHECK_NEAR(gw[0], 3, 0);
    CHECK_NEAR(grad_clip_global_norm(&opt, 1), 5, 1e-6);
    CHECK_NEAR(gw[0], 0.6, 1e-6);
    CHECK_NEAR(gb[2], 0.8, 1e-6);
    CHECK_NEAR(grad_global_norm(&opt), 1, 1e-6);
    adamw_free(&opt);
    param_set_free(&s);
}

TEST(fame_vil_multistep_schedule) {
    lr_schedule s = schedule_fame_vil(1e-4);
    tl_error err;
    CHECK(schedule_validate(&s, &err) == TL_OK);
    CHECK_NEAR(schedule_lr(&s, 0), 0.25e-4, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 5000), 0.625e-4, 1e-12); /* halfway up the warm-up */
    CHECK_NEAR(schedule_lr(&s, 10000), 1e-4, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 49999), 1e-4, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 50000), 1e-5, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 80000), 1e-6, 1e-13);
    s.milestones[1] = 40000;
    CHECK(schedule_validate(&s, &err) == TL_ERR_INVALID);
}

TEST(cosine_schedule) {
    lr_schedule s = {SCHEDULE_COSINE, 1.0, 10, 0.0, {0}, 0, 1.0, 110, 0.1};
    tl_error err;
    CHECK(schedule_validate(&s, &err) == TL_OK);
    CHECK_NEAR(schedule_lr(&s, 0), 0.0, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 5), 0.5, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 10), 1.0, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 60), 0.55, 1e-12); /* halfway: floor + half the range */
    CHECK_NEAR(schedule_lr(&s, 110), 0.1, 1e-12);
    CHECK_NEAR(schedule_lr(&s, 500), 0.1, 1e-12);
    s.total_iters = 5;
    CHECK(schedule_validate(&s, &err) == TL_ERR_INVALID);
}

TEST(saved_state_resumes_exactly) {
    param_set a, b;
    float *wa, *gwa, *ba, *gba, *wb, *gwb, *bb, *gbb;
    tl_error err;
    make_set(&a, &wa, &gwa, &ba, &gba);
    make_set(&b, &wb, &gwb, &bb, &gbb);
    adamw_config cfg = {0.9, 0.999, 1e-8, 0.01, 1};
    param_set *sa[] = {&a}, *sb[] = {&b};
    adamw oa, ob;
    REQUIRE(adamw_init(&oa, &cfg, sa, NULL, 1, NULL, 0, &err) == TL_OK);
    REQUIRE(adamw_init(&ob, &cfg, sb, NULL, 1, NULL, 0, &err) == TL_OK);
    for (int t = 0; t < 3; t++) {
        for (int i = 0; i < 6; i++) gwa[i] = (float)(0.1 * (i + t) - 0.2);
        for (int i = 0; i < 3; i++) gba[i] = (float)(0.05 * (t - i));
        adamw_step(&oa, 1e-2);
    }
    char path[] = "/tmp/tailor-adamw-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    REQUIRE(adamw_save(&oa, path, &err) == TL_OK);
    REQUIRE(adamw_load(&ob, path, &err) == TL_OK);
    CHECK(ob.steps == 3);
    memcpy(b.data, a.data, a.total * sizeof(float)); /* the weights come from the checkpoint */
    memcpy(b.grad, a.grad, a.total * sizeof(float));
    adamw_step(&oa, 1e-2);
    adamw_step(&ob, 1e-2);
    CHECK(!memcmp(a.data, b.data, a.total * sizeof(float)));
    CHECK(adamw_load(&ob, "/nonexistent/state.safetensors", &err) != TL_OK);
    char other[4200]; /* a file without these moments */
    snprintf(other, sizeof other, "%s/tailor-tiny/model.safetensors", th_testdata());
    CHECK(adamw_load(&ob, other, &err) == TL_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "layer.weight.exp_avg") != NULL);
    unlink(path);
    adamw_free(&oa), adamw_free(&ob);
    param_set_free(&a), param_set_free(&b);
}

int main(void) {
    RUN(adamw_matches_the_update_rule);
    RUN(sets_without_gradients_are_skipped);
    RUN(weight_decay_rules);
    RUN(global_norm_clipping);
    RUN(fame_vil_multistep_schedule);
    RUN(cosine_schedule);
    RUN(saved_state_resumes_exactly);
    return th_done();
}
