/* Training from a plain CLIP checkpoint: train_model_open leaves the FAME-ViL parts zero and
 * says which, train_model_init_parts fills them by MODEL.md's init (adapters start as zero
 * functions, σ = 4), deterministically; a first XMR step then trains W_up but not W_down. */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "init.h"
#include "train_tasks.h"

static tl_backend *be;
static char clip_dir[4096];
static json_t *tailor;

static tl_status open_plain(train_model *m, unsigned *missing) {
    tl_error err = {0};
    train_open_options opt = {(1u << TRAIN_PART_COUNT) - 1, tailor, 1};
    tl_status st = train_model_open(m, be, clip_dir, &opt, missing, &err);
    if (st) printf("# %s\n", err.message);
    return st;
}

TEST(plain_clip_opens_with_parts_missing) {
    train_model m;
    unsigned missing = 0;
    REQUIRE(open_plain(&m, &missing) == TL_OK);
    CHECK(missing == ((1u << TRAIN_PART_COUNT) - 1) - (1u << TRAIN_PART_CLIP));
    CHECK(m.adapter_dim == 4 && m.scr_classes == 3 && m.ntm.blocks == 2);
    train_open_options strict = {0, tailor, 0};
    tl_error err;
    train_model s;
    CHECK(train_model_open(&s, be, clip_dir, &strict, NULL, &err) == TL_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "tsa.xmr") != NULL);
    train_model_free(&m);
}

TEST(init_follows_model_md) {
    train_model m, again;
    unsigned missing = 0;
    tl_error err;
    REQUIRE(open_plain(&m, &missing) == TL_OK);
    REQUIRE(open_plain(&again, &missing) == TL_OK);
    REQUIRE(train_model_init_parts(&m, missing, 7, &err) == TL_OK);
    REQUIRE(train_model_init_parts(&again, missing, 7, &err) == TL_OK);
    const tr_adapter *a = &m.vision.tower.tsa[TL_TASK_XMR][0];
    int D = a->dim, r = a->rank, up_zero = 1, down_in_bound = 1, down_nonzero = 0;
    for (int i = 0; i < D * r; i++) {
        up_zero &= a->up.w[i] == 0;
        down_in_bound &= fabsf(a->down.w[i]) <= 1.0f / sqrtf((float)D);
        down_nonzero |= a->down.w[i] != 0;
    }
    CHECK(up_zero && down_in_bound && down_nonzero);
    CHECK(a->s[0] == 1 && a->ln.w[0] == 1 && a->ln.b[0] == 0 && a->up.b[0] == 0);
    CHECK(m.head_scale[0][0] == 4 && m.head_scale[1][0] == 4 && m.ntm.scale[0] == 4);
    CHECK(m.text.tower.xaa[1].adapter.s[0] == 1);
    for (int p = 1; p < TRAIN_PART_COUNT; p++) /* same seed, same values */
        CHECK(!memcmp(m.parts[p].data, again.parts[p].data, m.parts[p].total * sizeof(float)));
    REQUIRE(train_model_init_parts(&again, missing, 8, &err) == TL_OK);
    CHECK(memcmp(m.parts[TRAIN_PART_XAA].data, again.parts[TRAIN_PART_XAA].data,
                 m.parts[TRAIN_PART_XAA].total * sizeof(float)) != 0);
    train_model_free(&m);
    train_model_free(&again);
}

TEST(first_step_trains_up_not_down) {
    train_model m;
    unsigned missing = 0;
    tl_error err = {0};
    REQUIRE(open_plain(&m, &missing) == TL_OK);
    REQUIRE(train_model_init_parts(&m, missing, 1, &err) == TL_OK);
    int B = 2, S = m.vision.image_size;
    float *pixels = malloc((size_t)B * 3 * S * S * sizeof *pixels);
    for (int i = 0; i < B * 3 * S * S; i++) pixels[i] = (float)((i * 7919 % 200) - 100) / 100;
    int32_t ids[2][5] = {{49406, 320, 1125, 49407, 0}, {49406, 2368, 49407, 0, 0}};
    train_arena ar = {0};
    double loss = 0;
    CHECK(train_xmr_step(&m, &ar, pixels, &ids[0][0], 5, B, NULL, &loss, &err) == TL_OK);
    CHECK(isfinite(loss) && loss > 0);
    const tr_adapter *a = &m.text.tower.tsa[TL_TASK_XMR][1];
    double down = 0, up = 0;
    for (int i = 0; i < a->dim * a->rank; i++) down += fabs(a->down.dw[i]), up += fabs(a->up.dw[i]);
    CHECK(down == 0); /* W_up = 0 stops the gradient before W_down */
    CHECK(up > 0);
    free(pixels);
    train_arena_free(&ar);
    train_model_free(&m);
}

int main(void) {
    tl_error err;
    snprintf(clip_dir, sizeof clip_dir, "%s/clip-tiny", th_testdata());
    json_error_t je;
    tailor =
        json_loads("{\"format\": 1, \"tasks\": [\"xmr\", \"tgir\", \"scr\", \"fic\"], "
                   "\"adapter_dim\": 4, \"xaa_dim\": 4, \"scr_labels\": [\"a\", \"b\", \"c\"], "
                   "\"ntm\": {\"blocks\": 2, \"slots\": 3, \"width\": 32, \"hidden\": 16}}",
                   0, &je);
    if (!tailor || tl_backend_cpu_create(&be, 2, &err)) {
        printf("Bail out! setup\n");
        return 1;
    }
    RUN(plain_clip_opens_with_parts_missing);
    RUN(init_follows_model_md);
    RUN(first_step_trains_up_not_down);
    json_decref(tailor);
    be->destroy(be);
    return th_done();
}
