/* The training configuration of `tailor-train CONFIG.json`: one table declares every option
 * (key, type, default, bounds, meaning; proto/train_config.md lists the same), and parsing,
 * defaults and validation all read it. Not for: running training or loading the data sets. */
#ifndef TL_TRAINER_TRAIN_CONFIG_H
#define TL_TRAINER_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum { TRAIN_MAX_LIST = 16 }; /* longest number or string list in a config */

typedef enum train_task {
    TRAIN_TASK_XMR,
    TRAIN_TASK_TGIR,
    TRAIN_TASK_SCR,
    TRAIN_TASK_FIC,
    TRAIN_TASK_MULTITURN, /* the CM-NTM on multi-turn transactions */
    TRAIN_N_TASKS
} train_task;
extern const char *const TRAIN_TASK_NAMES[TRAIN_N_TASKS]; /* "xmr", ..., "multiturn" */

typedef enum train_dataset_kind {
    TRAIN_DATA_DEMO,
    TRAIN_DATA_CATALOG,
    TRAIN_DATA_FASHIONIQ,
    TRAIN_DATA_FASHIONIQ_MULTITURN,
    TRAIN_DATA_FASHIONGEN,
    TRAIN_N_DATASET_KINDS
} train_dataset_kind;
extern const char *const TRAIN_DATASET_KIND_NAMES[TRAIN_N_DATASET_KINDS];

typedef struct train_dataset_config {
    int kind;                         /* train_dataset_kind */
    char *path;                       /* directory or file, by kind */
    char *split;                      /* "train", "val", "test" */
    char *images;                     /* image directory; NULL: the kind's default */
    char *triplets, *transactions;    /* catalog: optional JSONL files */
    char *categories[TRAIN_MAX_LIST]; /* fashioniq: garment categories */
    size_t n_categories;
    int64_t limit; /* at most this many records; 0 = all */
} train_dataset_config;

typedef struct train_task_config {
    int task;                          /* train_task */
    train_dataset_config dataset;      /* training data */
    train_dataset_config eval_dataset; /* evaluation data; kind -1 when absent */
    double weight;                     /* sampling weight (sampling = "weights") */
    char *teacher;                     /* checkpoint directory of the distillation teacher */
    double distill_weight;             /* weight of the distillation loss */
} train_task_config;

typedef struct train_tower_config {
    int64_t width, layers, heads, mlp;
} train_tower_config;

typedef struct train_lr_group {
    char *pattern;       /* fnmatch(3) glob over tensor names; the first matching group wins */
    double lr_mult;      /* multiplies optimizer.lr */
    double weight_decay; /* < 0: optimizer.weight_decay */
} train_lr_group;

typedef enum train_sampling { TRAIN_SAMPLE_PROPORTIONAL, TRAIN_SAMPLE_WEIGHTS } train_sampling;
typedef enum train_schedule_kind {
    TRAIN_SCHEDULE_MULTISTEP,
    TRAIN_SCHEDULE_COSINE
} train_schedule_kind;
typedef enum train_mode { TRAIN_MODE_MULTITASK, TRAIN_MODE_TEACHERS } train_mode;

typedef struct train_config {
    int mode; /* train_mode */
    struct {
        char *init;      /* checkpoint directory to start from; NULL: from scratch with the sizes */
        char *tokenizer; /* from scratch: directory with vocab.json and merges.txt */
        train_tower_config vision, text;
        int64_t patch, image_size, context, projection, adapter_dim, xaa_dim;
        int64_t scr_classes;
        struct {
            int64_t blocks, slots, hidden;
        } ntm;
    } model;
    train_task_config *tasks;
    size_t n_tasks;
    int sampling; /* train_sampling */
    struct {
        bool backbone, adapters, xaa, heads, ntm;
    } freeze;
    struct {
        double lr, backbone_lr_mult, betas[2], eps, weight_decay, grad_clip;
        size_t n_betas;
        bool decay_biases;
        train_lr_group *groups;
        size_t n_groups;
    } optimizer;
    struct {
        int kind; /* train_schedule_kind */
        int64_t warmup_steps;
        double warmup_factor, gamma, min_lr_factor;
        int64_t milestones[TRAIN_MAX_LIST];
        size_t n_milestones;
    } schedule;
    int64_t batch_size, steps, seed, threads, log_interval;
    struct {
        char *dir;
        int64_t checkpoint_interval;
    } output;
    struct {
        int64_t interval, batch_size;
    } eval;
} train_config;

/* Parses a configuration from JSON text; name labels messages (a file name, or "config").
 * Fills defaults, then the values given, then checks cross-field rules; relative paths are
 * then prefixed with base_dir + "/" (NULL: left as they are). Every error message
 * starts with the key it is about, e.g. "schedule.warmup_steps: must be ≥ 0, got -3";
 * JSON syntax errors give "name:line:column". On success free with train_config_free; on
 * failure cfg holds nothing. */
tl_status train_config_parse(train_config *cfg, const char *json_text, const char *name,
                             const char *base_dir, tl_error *err);

/* train_config_parse on the contents of path, with paths relative to path's directory. */
tl_status train_config_load(train_config *cfg, const char *path, tl_error *err);

void train_config_free(train_config *cfg);

/* Calls fn once per option, depth first, with its full key ("schedule.warmup_steps",
 * "tasks[].dataset.kind"), type name, default and bounds as text, and meaning. The table in
 * proto/train_config.md lists the same keys. */
typedef void (*train_config_option_fn)(void *ctx, const char *key, const char *type,
                                       const char *default_text, const char *bounds,
                                       const char *meaning);
void train_config_describe(train_config_option_fn fn, void *ctx);

#endif
