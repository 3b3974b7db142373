/* libFuzzer target for the training configuration (proto/train_config.md): arbitrary bytes as
 * the text of a config through train_config_parse, with relative paths resolved against a base
 * directory. Every accepted config must satisfy the rules the trainer relies on (at least one
 * task, heads dividing widths, patches tiling the image, list counts within their arrays). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train_config.h"

static void check_tower(const train_tower_config *t) {
    if (t->width < 1 || t->layers < 1 || t->heads < 1 || t->mlp < 1 || t->width % t->heads) abort();
}

static void check_dataset(const train_dataset_config *d) {
    if (d->kind < 0 || d->kind >= TRAIN_N_DATASET_KINDS || d->n_categories > TRAIN_MAX_LIST ||
        d->limit < 0)
        abort();
}

static void check_config(const train_config *cfg) {
    if (cfg->n_tasks < 1 || !cfg->tasks) abort();
    if (!cfg->model.init) {
        check_tower(&cfg->model.vision);
        check_tower(&cfg->model.text);
        if (cfg->model.patch < 1 || cfg->model.image_size % cfg->model.patch) abort();
    }
    for (size_t i = 0; i < cfg->n_tasks; i++) {
        const train_task_config *t = &cfg->tasks[i];
        if (t->task < 0 || t->task >= TRAIN_N_TASKS) abort();
        check_dataset(&t->dataset);
        if (t->eval_dataset.kind >= 0) check_dataset(&t->eval_dataset);
    }
    if (cfg->optimizer.n_betas > 2 || cfg->schedule.n_milestones > TRAIN_MAX_LIST) abort();
    for (size_t i = 0; i < cfg->optimizer.n_groups; i++)
        if (!cfg->optimizer.groups[i].pattern) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    train_config cfg;
    tl_error err;
    if (train_config_parse(&cfg, text, "fuzz", "/base", &err) == TL_OK) {
        check_config(&cfg);
        train_config_free(&cfg);
    } else if (!err.message[0]) {
        abort(); /* every failure names its problem */
    }
    free(text);
    return 0;
}
