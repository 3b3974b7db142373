/* Tests of trainer/train_config: defaults, every kind of error naming its key, path
 * resolution, and that proto/train_config.md documents every option of the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "test_util.h"
#include "train_config.h"

#define MINIMAL                                                                                    \
    "{\"tasks\": [{\"task\": \"xmr\", \"dataset\": {\"kind\": \"demo\", \"path\": \"demo\"}}],"    \
    " \"output\": {\"dir\": \"run\"}}"

TEST(minimal_config_gets_defaults) {
    train_config cfg;
    tl_error err = {0};
    REQUIRE(train_config_parse(&cfg, MINIMAL, "config", NULL, &err) == TL_OK);
    CHECK(cfg.n_tasks == 1 && cfg.tasks[0].task == TRAIN_TASK_XMR);
    CHECK(cfg.tasks[0].dataset.kind == TRAIN_DATA_DEMO);
    CHECK(!strcmp(cfg.tasks[0].dataset.path, "demo"));
    CHECK(!strcmp(cfg.tasks[0].dataset.split, "train"));
    CHECK(cfg.tasks[0].eval_dataset.kind == -1); /* absent */
    CHECK(cfg.tasks[0].teacher == NULL && cfg.tasks[0].weight == 1.0);
    CHECK(cfg.mode == TRAIN_MODE_MULTITASK && cfg.sampling == TRAIN_SAMPLE_PROPORTIONAL);
    /* MODEL.md §2's schedule. */
    CHECK(cfg.optimizer.lr == 1e-4 && cfg.optimizer.backbone_lr_mult == 0.01);
    CHECK(cfg.optimizer.n_betas == 2 && cfg.optimizer.betas[0] == 0.9 &&
          cfg.optimizer.betas[1] == 0.999);
    CHECK(cfg.optimizer.eps == 1e-8 && cfg.optimizer.weight_decay == 1e-5);
    CHECK(!cfg.optimizer.decay_biases && cfg.optimizer.n_groups == 0);
    CHECK(cfg.schedule.kind == TRAIN_SCHEDULE_MULTISTEP && cfg.schedule.warmup_steps == 10000);
    CHECK(cfg.schedule.warmup_factor == 0.25 && cfg.schedule.gamma == 0.1);
    CHECK(cfg.schedule.n_milestones == 2 && cfg.schedule.milestones[0] == 50000 &&
          cfg.schedule.milestones[1] == 80000);
    CHECK(cfg.steps == 90000 && cfg.batch_size == 64 && cfg.seed == 0);
    CHECK(cfg.model.init == NULL && cfg.model.adapter_dim == 64 && cfg.model.xaa_dim == 64);
    CHECK(cfg.model.vision.width == 256 && cfg.model.patch == 8 && cfg.model.image_size == 64);
    CHECK(cfg.model.ntm.blocks == 8 && cfg.model.ntm.slots == 8 && cfg.model.ntm.hidden == 0);
    CHECK(!cfg.freeze.backbone && !cfg.freeze.ntm);
    CHECK(!strcmp(cfg.output.dir, "run") && cfg.output.checkpoint_interval == 1000);
    CHECK(cfg.eval.interval == 1000);
    train_config_free(&cfg);
}

static const char FULL[] =
    "{\"mode\": \"multitask\","
    " \"model\": {\"init\": \"/ckpt/clip\", \"adapter_dim\": 32, \"ntm_blocks\": 2},"
    " \"tasks\": ["
    "  {\"task\": \"tgir\", \"dataset\": {\"kind\": \"fashioniq\", \"path\": \"fiq\","
    "    \"categories\": [\"dress\"], \"limit\": 100},"
    "   \"eval_dataset\": {\"kind\": \"fashioniq\", \"path\": \"fiq\", \"split\": \"val\"},"
    "   \"teacher\": \"teachers/tgir\", \"weight\": 2},"
    "  {\"task\": \"multiturn\", \"dataset\": {\"kind\": \"catalog\", \"path\": \"cat.jsonl\","
    "    \"transactions\": \"tx.jsonl\"}},"
    "  {\"task\": \"fic\", \"dataset\": {\"kind\": \"fashiongen\", \"path\": \"fg.h5\"}}],"
    " \"sampling\": \"weights\","
    " \"freeze\": {\"backbone\": true},"
    " \"optimizer\": {\"lr\": 3e-4, \"betas\": [0.8, 0.99], \"grad_clip\": 1.0,"
    "   \"groups\": [{\"pattern\": \"*.tsa.*\", \"lr_mult\": 2}, {\"pattern\": \"heads.*\","
    "   \"weight_decay\": 0}]},"
    " \"schedule\": {\"kind\": \"cosine\", \"warmup_steps\": 10, \"milestones\": []},"
    " \"steps\": 100, \"seed\": 7, \"threads\": 2,"
    " \"output\": {\"dir\": \"out\", \"checkpoint_interval\": 0}, \"eval\": {\"interval\": 50}}";

TEST(full_config_reads_every_kind_of_value) {
    train_config cfg;
    tl_error err = {0};
    REQUIRE(train_config_parse(&cfg, FULL, "config", "/base", &err) == TL_OK);
    CHECK(!strcmp(cfg.model.init, "/ckpt/clip") && cfg.model.adapter_dim == 32);
    CHECK(cfg.model.ntm.blocks == 2 && cfg.n_tasks == 3);
    const train_task_config *t = &cfg.tasks[0];
    CHECK(t->task == TRAIN_TASK_TGIR && t->dataset.kind == TRAIN_DATA_FASHIONIQ);
    CHECK(!strcmp(t->dataset.path, "/base/fiq") && t->dataset.limit == 100);
    CHECK(t->dataset.n_categories == 1 && !strcmp(t->dataset.categories[0], "dress"));
    CHECK(t->eval_dataset.kind == TRAIN_DATA_FASHIONIQ && !strcmp(t->eval_dataset.split, "val"));
    CHECK(t->eval_dataset.n_categories == 3); /* the default list */
    CHECK(!strcmp(t->teacher, "/base/teachers/tgir") && t->weight == 2);
    CHECK(!strcmp(cfg.tasks[1].dataset.transactions, "/base/tx.jsonl"));
    CHECK(cfg.tasks[2].dataset.kind == TRAIN_DATA_FASHIONGEN);
    CHECK(cfg.sampling == TRAIN_SAMPLE_WEIGHTS && cfg.freeze.backbone && !cfg.freeze.adapters);
    CHECK(cfg.optimizer.lr == 3e-4 && cfg.optimizer.betas[0] == 0.8 &&
          cfg.optimizer.grad_clip == 1.0);
    CHECK(cfg.optimizer.n_groups == 2 && !strcmp(cfg.optimizer.groups[0].pattern, "*.tsa.*"));
    CHECK(cfg.optimizer.groups[0].lr_mult == 2 && cfg.optimizer.groups[0].weight_decay == -1);
    CHECK(cfg.optimizer.groups[1].lr_mult == 1 && cfg.optimizer.groups[1].weight_decay == 0);
    CHECK(cfg.schedule.kind == TRAIN_SCHEDULE_COSINE && cfg.schedule.n_milestones == 0);
    CHECK(cfg.steps == 100 && cfg.seed == 7 && cfg.threads == 2);
    CHECK(!strcmp(cfg.output.dir, "/base/out") && cfg.output.checkpoint_interval == 0);
    train_config_free(&cfg);
}

/* Replaces the first occurrence of `from` in MINIMAL-like text and expects an error whose
 * message starts with `expected`. */
static void expect_error(const char *text, const char *expected) {
    train_config cfg;
    tl_error err = {0};
    tl_status st = train_config_parse(&cfg, text, "config", NULL, &err);
    CHECKF(st != TL_OK, "accepted: %s", text);
    if (st == TL_OK) {
        train_config_free(&cfg);
        return;
    }
    CHECKF(!strncmp(err.message, expected, strlen(expected)), "got \"%s\", want \"%s...\"",
           err.message, expected);
}

#define TASKS_XMR                                                                                  \
    "\"tasks\": [{\"task\": \"xmr\", \"dataset\": {\"kind\": \"demo\", \"path\": \"d\"}}]"
#define WITH(extra) "{" TASKS_XMR ", \"output\": {\"dir\": \"run\"}, " extra "}"

TEST(bad_values_name_their_key) {
    expect_error(WITH("\"schedule\": {\"warmup_steps\": -3}"),
                 "schedule.warmup_steps: must be ≥ 0, got -3");
    expect_error(WITH("\"steps\": 1.5"), "steps: must be an integer, got 1.5");
    expect_error(WITH("\"steps\": \"10\""), "steps: must be an integer, got \"10\"");
    expect_error(WITH("\"optimizer\": {\"lr\": 0}"), "optimizer.lr: must be > 0, got 0");
    expect_error(WITH("\"optimizer\": {\"betas\": [0.9, 1.5]}"),
                 "optimizer.betas[1]: must be < 1, got 1.5");
    expect_error(WITH("\"optimizer\": {\"betas\": [0.9]}"),
                 "optimizer.betas: must hold exactly 2 numbers, got 1");
    expect_error(WITH("\"freeze\": {\"xaa\": 1}"), "freeze.xaa: must be true or false, got 1");
    expect_error(WITH("\"schedule\": {\"kind\": \"linear\"}"),
                 "schedule.kind: must be one of multistep, cosine, got \"linear\"");
    expect_error(WITH("\"schedule\": {\"milestones\": [5, 5]}"),
                 "schedule.milestones[1]: must be greater than the one before (5), got 5");
    expect_error(WITH("\"schedule\": {\"milestones\": [0]}"),
                 "schedule.milestones[0]: must be ≥ 1, got 0");
    expect_error(WITH("\"steps\": 10"), "schedule.warmup_steps: must be ≤ steps (10), got 10000");
    expect_error(WITH("\"optimizer\": {\"groups\": [{\"lr_mult\": 2}]}"),
                 "optimizer.groups[0].pattern: required");
    expect_error(WITH("\"optimizer\": {\"groups\": [3]}"),
                 "optimizer.groups[0]: must be an object, got 3");
    expect_error(WITH("\"model\": {\"init\": \"\"}"),
                 "model.init: must be a non-empty string or null, got \"\"");
    expect_error(WITH("\"model\": []"), "model: must be an object, got []");
}

TEST(unknown_and_missing_keys) {
    expect_error(WITH("\"optimizer\": {\"lrr\": 1}"), "optimizer.lrr: unknown key");
    expect_error(WITH("\"stepz\": 1"), "stepz: unknown key");
    expect_error("{" TASKS_XMR "}", "output: required");
    expect_error("{\"output\": {\"dir\": \"r\"}}", "tasks: required");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": []}", "tasks: must list at least one");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [{\"task\": \"xmr\"}]}",
                 "tasks[0].dataset: required");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [{\"task\": \"xmr\", "
                 "\"dataset\": {\"kind\": \"demo\", \"pth\": \"d\"}}]}",
                 "tasks[0].dataset.pth: unknown key");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [{\"task\": \"xmr\", "
                 "\"dataset\": {\"kind\": \"demo\"}}]}",
                 "tasks[0].dataset.path: required");
    expect_error("[1, 2]", "config: must hold a JSON object");
    expect_error("{\"steps\": 1, \"steps\": 2}", "config:1:");
    expect_error("{\n  \"steps\": ,\n}", "config:2:");
}

TEST(cross_field_rules_name_their_key) {
    expect_error(WITH("\"model\": {\"vision_width\": 250}"),
                 "model.vision_width: must be a multiple of model.vision_heads (4), got 250");
    expect_error(WITH("\"model\": {\"image_size\": 60}"),
                 "model.image_size: must be a multiple of model.patch (8), got 60");
    expect_error(WITH("\"model\": {\"init\": \"ck\", \"projection\": 128}"),
                 "model.projection: not allowed with model.init");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"model\": {\"text_layers\": 3}, \"tasks\": "
                 "[{\"task\": \"scr\", \"dataset\": {\"kind\": \"demo\", \"path\": \"d\"}}]}",
                 "model.text_layers: fusion tasks need as many layers as model.vision_layers "
                 "(4), got 3");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [{\"task\": \"tgir\", \"dataset\": "
                 "{\"kind\": \"fashiongen\", \"path\": \"f.h5\"}}]}",
                 "tasks[0].dataset.kind: fashiongen data cannot train task tgir");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [{\"task\": \"tgir\", \"dataset\": "
                 "{\"kind\": \"catalog\", \"path\": \"c.jsonl\"}}]}",
                 "tasks[0].dataset.triplets: required for task tgir on a catalog");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [{\"task\": \"multiturn\", "
                 "\"dataset\": {\"kind\": \"fashioniq_multiturn\", \"path\": \"m\", "
                 "\"categories\": []}}]}",
                 "tasks[0].dataset.categories: must name at least one category");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"tasks\": [" /* */
                 "{\"task\": \"xmr\", \"dataset\": {\"kind\": \"demo\", \"path\": \"d\"}},"
                 "{\"task\": \"xmr\", \"dataset\": {\"kind\": \"demo\", \"path\": \"d\"}}]}",
                 "tasks[1].task: xmr is listed twice");
    expect_error(WITH("\"mode\": \"teachers\", \"tasks\": [{\"task\": \"xmr\", \"teacher\": "
                      "\"t\", \"dataset\": {\"kind\": \"demo\", \"path\": \"d\"}}]"),
                 "config:1:"); /* tasks given twice: a duplicate key */
    expect_error("{\"output\": {\"dir\": \"r\"}, \"mode\": \"teachers\", \"tasks\": [{\"task\": "
                 "\"xmr\", \"teacher\": \"t\", \"dataset\": {\"kind\": \"demo\", \"path\": "
                 "\"d\"}}]}",
                 "tasks[0].teacher: not used with mode = teachers");
    expect_error("{\"output\": {\"dir\": \"r\"}, \"sampling\": \"weights\", \"tasks\": [{\"task\": "
                 "\"xmr\", \"weight\": 0, \"dataset\": {\"kind\": \"demo\", \"path\": \"d\"}}]}",
                 "tasks: sampling = weights needs a task with weight > 0");
    expect_error(WITH("\"freeze\": {\"backbone\": true, \"adapters\": true, \"xaa\": true, "
                      "\"heads\": true, \"ntm\": true}"),
                 "freeze: every part the tasks train is frozen");
}

TEST(load_resolves_paths_from_the_config_directory) {
    char dir[256];
    REQUIRE(!tu_make_temp_dir(dir, sizeof dir, "test_train_config"));
    char path[300];
    snprintf(path, sizeof path, "%s/train.json", dir);
    REQUIRE(!tu_write_text(path, MINIMAL));
    train_config cfg;
    tl_error err = {0};
    REQUIRE(train_config_load(&cfg, path, &err) == TL_OK);
    char want[320];
    snprintf(want, sizeof want, "%s/demo", dir);
    CHECK(!strcmp(cfg.tasks[0].dataset.path, want));
    snprintf(want, sizeof want, "%s/run", dir);
    CHECK(!strcmp(cfg.output.dir, want));
    train_config_free(&cfg);
    unlink(path);
    CHECK(train_config_load(&cfg, path, &err) == TL_ERR_IO && strstr(err.message, path));
    rmdir(dir);
}

typedef struct doc_check {
    const char *doc;
    size_t n_options, missing;
} doc_check;

static void check_documented(void *ctx, const char *key, const char *type, const char *default_text,
                             const char *bounds, const char *meaning) {
    doc_check *c = ctx;
    char cell[300];
    snprintf(cell, sizeof cell, "| `%s` |", key);
    c->n_options++;
    if (!strstr(c->doc, cell)) {
        c->missing++;
        printf("#   %s (%s, default %s, %s: %s) is not in proto/train_config.md\n", key, type,
               default_text, bounds, meaning);
    }
}

/* Every option of the table has a row in proto/train_config.md. */
TEST(every_option_is_documented) {
    char *doc = tu_read_file(TL_SOURCE_ROOT "/proto/train_config.md", NULL);
    REQUIRE(doc);
    doc_check c = {doc, 0, 0};
    train_config_describe(check_documented, &c);
    CHECK(c.n_options > 60);
    CHECK(c.missing == 0);
    free(doc);
}

int main(void) {
    RUN(minimal_config_gets_defaults);
    RUN(full_config_reads_every_kind_of_value);
    RUN(bad_values_name_their_key);
    RUN(unknown_and_missing_keys);
    RUN(cross_field_rules_name_their_key);
    RUN(load_resolves_paths_from_the_config_directory);
    RUN(every_option_is_documented);
    return th_done();
}
