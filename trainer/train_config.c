/* Training configuration: the option table, a table-driven JSON reader (defaults, types,
 * bounds, unknown keys) and the cross-field rules. Each option's default is JSON text that
 * goes through the same reader as the user's value. Not for: what training does with it. */
#include "train_config.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const TRAIN_TASK_NAMES[TRAIN_N_TASKS] = {"xmr", "tgir", "scr", "fic", "multiturn"};
const char *const TRAIN_DATASET_KIND_NAMES[TRAIN_N_DATASET_KINDS] = {
    "demo", "catalog", "fashioniq", "fashioniq_multiturn", "fashiongen"};
static const char *const SAMPLING_NAMES[] = {"proportional", "weights", NULL};
static const char *const SCHEDULE_NAMES[] = {"multistep", "cosine", NULL};
static const char *const MODE_NAMES[] = {"multitask", "teachers", NULL};
static const char *const TASK_CHOICES[] = {"xmr", "tgir", "scr", "fic", "multiturn", NULL};
static const char *const KIND_CHOICES[] = {
    "demo", "catalog", "fashioniq", "fashioniq_multiturn", "fashiongen", NULL};

typedef enum option_type {
    OPT_INT,
    OPT_DOUBLE,
    OPT_BOOL,
    OPT_STRING,
    OPT_PATH, /* a string; relative paths are taken from the config file's directory */
    OPT_ENUM,
    OPT_INT_LIST,
    OPT_DOUBLE_LIST,
    OPT_STRING_LIST,
    OPT_OBJECT,
    OPT_OBJECT_LIST,
} option_type;

static const char *const TYPE_NAMES[] = {"integer",     "number", "boolean",      "string",
                                         "path",        "enum",   "integer list", "number list",
                                         "string list", "object", "object list"};

struct option_table;

typedef struct config_option {
    const char *key;
    option_type type;
    size_t offset;            /* of the value (lists: of the array; object lists: of the pointer) */
    size_t count_offset;      /* lists: of the size_t count */
    double min, max;          /* numbers and list elements */
    size_t max_count;         /* lists */
    const char *default_json; /* NULL: required */
    const char *const *choices;       /* enums, NULL-terminated */
    const struct option_table *table; /* objects: offsets relative to this option's value */
    const char *meaning;
    bool min_exclusive, max_exclusive;
} config_option;

typedef struct option_table {
    const config_option *options;
    size_t n_options;
    size_t element_size; /* object lists */
} option_table;

#define TABLE(opts, size)                                                                          \
    { opts, sizeof(opts) / sizeof((opts)[0]), size }
#define NUM(k, t, S, f, def, lo, hi, excl, m)                                                      \
    {                                                                                              \
        .key = k, .type = t, .offset = offsetof(S, f), .min = lo, .max = hi,                       \
        .min_exclusive = excl, .default_json = def, .meaning = m                                   \
    }
#define INT(k, S, f, def, lo, hi, m)    NUM(k, OPT_INT, S, f, def, lo, hi, false, m)
#define DOUBLE(k, S, f, def, lo, hi, m) NUM(k, OPT_DOUBLE, S, f, def, lo, hi, false, m)
#define POSITIVE(k, S, f, def, m)       NUM(k, OPT_DOUBLE, S, f, def, 0, INFINITY, true, m)
#define BOOL(k, S, f, def, m)                                                                      \
    { .key = k, .type = OPT_BOOL, .offset = offsetof(S, f), .default_json = def, .meaning = m }
#define STRING(k, S, f, def, m)                                                                    \
    { .key = k, .type = OPT_STRING, .offset = offsetof(S, f), .default_json = def, .meaning = m }
#define PATH(k, S, f, def, m)                                                                      \
    { .key = k, .type = OPT_PATH, .offset = offsetof(S, f), .default_json = def, .meaning = m }
#define ENUM(k, S, f, def, ch, m)                                                                  \
    {                                                                                              \
        .key = k, .type = OPT_ENUM, .offset = offsetof(S, f), .default_json = def, .choices = ch,  \
        .meaning = m                                                                               \
    }
#define LIST(k, t, S, f, n, def, lo, hi, m)                                                        \
    {                                                                                              \
        .key = k, .type = t, .offset = offsetof(S, f), .count_offset = offsetof(S, n), .min = lo,  \
        .max = hi, .max_count = TRAIN_MAX_LIST, .default_json = def, .meaning = m                  \
    }
#define OBJECT(k, off, tab, def, m)                                                                \
    {                                                                                              \
        .key = k, .type = OPT_OBJECT, .offset = off, .table = &tab, .default_json = def,           \
        .meaning = m                                                                               \
    }

static const double I64 = 9007199254740992.0; /* 2^53: integers exact in a double */

static const config_option DATASET_OPTIONS[] = {
    ENUM("kind", train_dataset_config, kind, NULL, KIND_CHOICES,
         "data set format (proto/datasets.md)"),
    PATH("path", train_dataset_config, path, NULL,
         "demo, fashioniq, fashioniq_multiturn: its directory; catalog: the JSONL file; "
         "fashiongen: the HDF5 file"),
    STRING("split", train_dataset_config, split, "\"train\"",
           "split to read (demo: train, test; fashioniq*: train, val, test; catalog and "
           "fashiongen: unused, one file is one split)"),
    PATH("images", train_dataset_config, images, "null",
         "image directory when not the format's default"),
    PATH("triplets", train_dataset_config, triplets, "null",
         "catalog: TGIR triplets JSONL (as the demo set's triplets-*.jsonl)"),
    PATH("transactions", train_dataset_config, transactions, "null",
         "catalog: multi-turn transactions JSONL (as the demo set's transactions-*.jsonl)"),
    LIST("categories", OPT_STRING_LIST, train_dataset_config, categories, n_categories,
         "[\"dress\", \"shirt\", \"toptee\"]", 0, 0, "fashioniq, fashioniq_multiturn: categories"),
    INT("limit", train_dataset_config, limit, "0", 0, I64,
        "read at most this many records; 0 = all"),
};
static const option_table DATASET_TABLE = TABLE(DATASET_OPTIONS, 0);

static const config_option TASK_OPTIONS[] = {
    ENUM("task", train_task_config, task, NULL, TASK_CHOICES,
         "xmr, tgir, scr, fic (FAME-ViL) or multiturn (CM-NTM); each at most once"),
    OBJECT("dataset", offsetof(train_task_config, dataset), DATASET_TABLE, NULL,
           "training data of the task"),
    OBJECT("eval_dataset", offsetof(train_task_config, eval_dataset), DATASET_TABLE, "null",
           "evaluation data of the task; absent: no evaluation"),
    DOUBLE("weight", train_task_config, weight, "1", 0, INFINITY,
           "sampling weight when sampling = weights"),
    PATH("teacher", train_task_config, teacher, "null",
         "checkpoint directory of this task's distillation teacher; null: no distillation"),
    DOUBLE("distill_weight", train_task_config, distill_weight, "1", 0, INFINITY,
           "weight of the distillation loss (L = L_task + w·L_KD)"),
};
static const option_table TASK_TABLE = TABLE(TASK_OPTIONS, sizeof(train_task_config));

static const config_option GROUP_OPTIONS[] = {
    STRING("pattern", train_lr_group, pattern, NULL,
           "fnmatch glob over tensor names, e.g. \"*.tsa.*\"; the first matching group wins"),
    DOUBLE("lr_mult", train_lr_group, lr_mult, "1", 0, INFINITY, "multiplies optimizer.lr"),
    DOUBLE("weight_decay", train_lr_group, weight_decay, "-1", -1, INFINITY,
           "weight decay of the group; -1: optimizer.weight_decay"),
};
static const option_table GROUP_TABLE = TABLE(GROUP_OPTIONS, sizeof(train_lr_group));

#define TOWER(prefix, f, w, l, h, m)                                                               \
    INT(prefix "width", train_config, f.width, w, 8, 65536, "hidden width"),                       \
        INT(prefix "layers", train_config, f.layers, l, 1, 256, "encoder layers"),                 \
        INT(prefix "heads", train_config, f.heads, h, 1, 256, "attention heads; divides width"),   \
        INT(prefix "mlp", train_config, f.mlp, m, 1, 262144, "MLP (intermediate) width")

static const config_option MODEL_OPTIONS[] = {
    PATH("init", train_config, model.init, "null",
         "checkpoint directory (MODEL.md §5, or a HF CLIP directory) to start from; null: "
         "from scratch with the sizes below, which must then not be given"),
    PATH("tokenizer", train_config, model.tokenizer, "null",
         "from scratch: directory with the tokenizer (vocab.json, merges.txt, e.g. model/vocab) "
         "whose vocabulary the model gets and whose files the checkpoints carry; training "
         "without model.init needs it; refused with model.init"),
    TOWER("vision_", model.vision, "256", "4", "4", "1024"),
    TOWER("text_", model.text, "256", "4", "4", "1024"),
    INT("patch", train_config, model.patch, "8", 1, 1024, "vision patch side in pixels"),
    INT("image_size", train_config, model.image_size, "64", 8, 4096,
        "input image side in pixels; a multiple of patch"),
    INT("context", train_config, model.context, "77", 4, 77, "text context length in tokens"),
    INT("projection", train_config, model.projection, "256", 8, 65536, "joint embedding width P"),
    INT("adapter_dim", train_config, model.adapter_dim, "64", 1, 65536, "TSA bottleneck r"),
    INT("xaa_dim", train_config, model.xaa_dim, "64", 1, 65536, "XAA adapter bottleneck"),
    INT("scr_classes", train_config, model.scr_classes, "0", 0, 1000000,
        "SCR head classes; 0: the number of subcategories in the scr task's data"),
    INT("ntm_blocks", train_config, model.ntm.blocks, "8", 1, 64, "CM-NTM cascaded blocks C"),
    INT("ntm_slots", train_config, model.ntm.slots, "8", 1, 4096, "memory slots N per block"),
    INT("ntm_hidden", train_config, model.ntm.hidden, "0", 0, 65536,
        "LSTM controller width H; 0: the projection width"),
};
static const option_table MODEL_TABLE = TABLE(MODEL_OPTIONS, 0);

static const config_option FREEZE_OPTIONS[] = {
    BOOL("backbone", train_config, freeze.backbone, "false",
         "freeze the CLIP weights (encoders, projections, logit_scale)"),
    BOOL("adapters", train_config, freeze.adapters, "false", "freeze the task-specific adapters"),
    BOOL("xaa", train_config, freeze.xaa, "false", "freeze the cross-attention adapters"),
    BOOL("heads", train_config, freeze.heads, "false", "freeze the task heads and their scales"),
    BOOL("ntm", train_config, freeze.ntm, "false", "freeze the CM-NTM"),
};
static const option_table FREEZE_TABLE = TABLE(FREEZE_OPTIONS, 0);

static const config_option OPTIMIZER_OPTIONS[] = {
    POSITIVE("lr", train_config, optimizer.lr, "1e-4",
             "AdamW learning rate of adapters, XAA, heads, scales and NTM"),
    DOUBLE("backbone_lr_mult", train_config, optimizer.backbone_lr_mult, "0.01", 0, INFINITY,
           "multiplies lr for the CLIP weights (1e-6 at the defaults)"),
    {.key = "betas",
     .type = OPT_DOUBLE_LIST,
     .offset = offsetof(train_config, optimizer.betas),
     .count_offset = offsetof(train_config, optimizer.n_betas),
     .min = 0,
     .max = 1,
     .max_exclusive = true,
     .max_count = 2,
     .default_json = "[0.9, 0.999]",
     .meaning = "AdamW β1, β2 (exactly two)"},
    POSITIVE("eps", train_config, optimizer.eps, "1e-8", "AdamW ε"),
    DOUBLE("weight_decay", train_config, optimizer.weight_decay, "1e-5", 0, INFINITY,
           "decoupled weight decay"),
    BOOL("decay_biases", train_config, optimizer.decay_biases, "false",
         "also decay biases, LayerNorm weights and scales (1-D tensors)"),
    DOUBLE("grad_clip", train_config, optimizer.grad_clip, "0", 0, INFINITY,
           "clip the global gradient norm to this; 0: no clipping"),
    {.key = "groups",
     .type = OPT_OBJECT_LIST,
     .offset = offsetof(train_config, optimizer.groups),
     .count_offset = offsetof(train_config, optimizer.n_groups),
     .max_count = 64,
     .default_json = "[]",
     .table = &GROUP_TABLE,
     .meaning = "learning-rate groups by tensor-name pattern, overriding the part defaults"},
};
static const option_table OPTIMIZER_TABLE = TABLE(OPTIMIZER_OPTIONS, 0);

static const config_option SCHEDULE_OPTIONS[] = {
    ENUM("kind", train_config, schedule.kind, "\"multistep\"", SCHEDULE_NAMES,
         "multistep: ×gamma at each milestone; cosine: to min_lr_factor·lr at the last step"),
    INT("warmup_steps", train_config, schedule.warmup_steps, "10000", 0, I64,
        "linear warm-up steps"),
    NUM("warmup_factor", OPT_DOUBLE, train_config, schedule.warmup_factor, "0.25", 0, 1, true,
        "LR factor at step 0, rising linearly to 1 over warmup_steps"),
    LIST("milestones", OPT_INT_LIST, train_config, schedule.milestones, schedule.n_milestones,
         "[50000, 80000]", 1, I64, "multistep: steps where the LR is multiplied by gamma"),
    NUM("gamma", OPT_DOUBLE, train_config, schedule.gamma, "0.1", 0, 1, true,
        "multistep: LR factor per milestone"),
    DOUBLE("min_lr_factor", train_config, schedule.min_lr_factor, "0", 0, 1,
           "cosine: final LR as a fraction of the peak"),
};
static const option_table SCHEDULE_TABLE = TABLE(SCHEDULE_OPTIONS, 0);

static const config_option OUTPUT_OPTIONS[] = {
    PATH("dir", train_config, output.dir, NULL, "run directory: checkpoints and metrics.jsonl"),
    INT("checkpoint_interval", train_config, output.checkpoint_interval, "1000", 0, I64,
        "write a checkpoint every this many steps (and at the end); 0: only at the end"),
};
static const option_table OUTPUT_TABLE = TABLE(OUTPUT_OPTIONS, 0);

static const config_option EVAL_OPTIONS[] = {
    INT("interval", train_config, eval.interval, "1000", 0, I64,
        "evaluate every this many steps (and at the end); 0: only at the end"),
    INT("batch_size", train_config, eval.batch_size, "256", 1, 1 << 20,
        "images or texts per forward pass while evaluating"),
};
static const option_table EVAL_TABLE = TABLE(EVAL_OPTIONS, 0);

static const config_option ROOT_OPTIONS[] = {
    ENUM("mode", train_config, mode, "\"multitask\"", MODE_NAMES,
         "multitask: one model on all tasks; teachers: one single-task model per task, "
         "written to output.dir/teacher-TASK (the teachers of a later distillation run)"),
    OBJECT("model", 0, MODEL_TABLE, "{}", "model to train"),
    {.key = "tasks",
     .type = OPT_OBJECT_LIST,
     .offset = offsetof(train_config, tasks),
     .count_offset = offsetof(train_config, n_tasks),
     .max_count = TRAIN_N_TASKS,
     .default_json = NULL,
     .table = &TASK_TABLE,
     .meaning = "tasks to train, with their data (at least one)"},
    ENUM("sampling", train_config, sampling, "\"proportional\"", SAMPLING_NAMES,
         "task of each step: proportional to dataset size, or to tasks[].weight"),
    OBJECT("freeze", 0, FREEZE_TABLE, "{}", "parts kept fixed"),
    OBJECT("optimizer", 0, OPTIMIZER_TABLE, "{}", "AdamW"),
    OBJECT("schedule", 0, SCHEDULE_TABLE, "{}", "learning-rate schedule"),
    INT("batch_size", train_config, batch_size, "64", 1, 1 << 20, "samples per step"),
    INT("steps", train_config, steps, "90000", 1, I64, "training steps (one task each)"),
    INT("seed", train_config, seed, "0", 0, I64, "seed of every random choice"),
    INT("threads", train_config, threads, "0", 0, 4096, "CPU threads; 0: all cores"),
    INT("log_interval", train_config, log_interval, "10", 1, I64,
        "write a metrics line every this many steps"),
    OBJECT("output", 0, OUTPUT_TABLE, NULL, "where the run is written"),
    OBJECT("eval", 0, EVAL_TABLE, "{}", "evaluation during training"),
};
static const option_table ROOT_TABLE = TABLE(ROOT_OPTIONS, 0);

/* ---- reading values ---- */

/* A short rendering of a JSON value for messages. */
static void describe_value(const json_t *v, char *out, size_t size) {
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(out, size, "%s", text ? text : "?");
    if (text && strlen(text) >= size && size > 4) strcpy(out + size - 4, "...");
    free(text);
}

static tl_status fail_value(tl_error *err, const char *key, const char *want, const json_t *v) {
    char got[64];
    describe_value(v, got, sizeof got);
    return tl_fail(err, TL_ERR_INVALID, "%s: must be %s, got %s", key, want, got);
}

static tl_status check_bounds(const config_option *o, const char *key, double x, const json_t *v,
                              tl_error *err) {
    char want[64];
    if (o->min_exclusive ? x <= o->min : x < o->min) {
        snprintf(want, sizeof want, "%s %g", o->min_exclusive ? ">" : "≥", o->min);
        return fail_value(err, key, want, v);
    }
    if (o->max_exclusive ? x >= o->max : x > o->max) {
        snprintf(want, sizeof want, "%s %g", o->max_exclusive ? "<" : "≤", o->max);
        return fail_value(err, key, want, v);
    }
    return TL_OK;
}

static tl_status read_int(const config_option *o, const char *key, const json_t *v, int64_t *out,
                          tl_error *err) {
    if (!json_is_integer(v)) return fail_value(err, key, "an integer", v);
    tl_status st = check_bounds(o, key, (double)json_integer_value(v), v, err);
    if (!st) *out = json_integer_value(v);
    return st;
}

static tl_status read_double(const config_option *o, const char *key, const json_t *v, double *out,
                             tl_error *err) {
    if (!json_is_number(v)) return fail_value(err, key, "a number", v);
    tl_status st = check_bounds(o, key, json_number_value(v), v, err);
    if (!st) *out = json_number_value(v);
    return st;
}

static tl_status read_string(const char *key, const json_t *v, char **out, bool nullable,
                             tl_error *err) {
    if (nullable && json_is_null(v)) {
        free(*out);
        *out = NULL;
        return TL_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return fail_value(err, key, nullable ? "a non-empty string or null" : "a non-empty string",
                          v);
    char *copy = strdup(json_string_value(v));
    if (!copy) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", key);
    free(*out);
    *out = copy;
    return TL_OK;
}

static tl_status read_enum(const config_option *o, const char *key, const json_t *v, int *out,
                           tl_error *err) {
    char want[160] = "one of ";
    for (size_t i = 0; o->choices[i]; i++) {
        if (json_is_string(v) && !strcmp(json_string_value(v), o->choices[i])) {
            *out = (int)i;
            return TL_OK;
        }
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%s", i ? ", " : "",
                 o->choices[i]);
    }
    return fail_value(err, key, want, v);
}

static tl_status read_object(const option_table *t, const char *prefix, const json_t *obj,
                             char *base, tl_error *err);
static tl_status apply_defaults(const option_table *t, const char *prefix, char *base,
                                tl_error *err);
static void free_table_values(const option_table *t, char *base);

static void free_object_list(const config_option *o, char *base) {
    char **elements = (char **)(base + o->offset);
    size_t *count = (size_t *)(base + o->count_offset);
    for (size_t k = 0; k < *count; k++)
        free_table_values(o->table, *elements + k * o->table->element_size);
    free(*elements);
    *elements = NULL, *count = 0;
}

static tl_status read_list(const config_option *o, const char *key, const json_t *v, char *base,
                           tl_error *err) {
    if (!json_is_array(v)) return fail_value(err, key, "a list", v);
    size_t n = json_array_size(v);
    if (n > o->max_count)
        return tl_fail(err, TL_ERR_INVALID, "%s: at most %zu entries, got %zu", key, o->max_count,
                       n);
    size_t *count = (size_t *)(base + o->count_offset);
    if (o->type == OPT_STRING_LIST)
        for (size_t i = 0; i < *count; i++) free(((char **)(base + o->offset))[i]);
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        char item_key[256];
        snprintf(item_key, sizeof item_key, "%s[%zu]", key, i);
        const json_t *item = json_array_get(v, i);
        tl_status st = TL_OK;
        if (o->type == OPT_INT_LIST)
            st = read_int(o, item_key, item, (int64_t *)(base + o->offset) + i, err);
        else if (o->type == OPT_DOUBLE_LIST)
            st = read_double(o, item_key, item, (double *)(base + o->offset) + i, err);
        else {
            ((char **)(base + o->offset))[i] = NULL;
            st = read_string(item_key, item, (char **)(base + o->offset) + i, false, err);
        }
        if (st) return st;
        *count = i + 1;
    }
    return TL_OK;
}

static tl_status read_object_list(const config_option *o, const char *key, const json_t *v,
                                  char *base, tl_error *err) {
    if (!json_is_array(v)) return fail_value(err, key, "a list of objects", v);
    size_t n = json_array_size(v);
    if (n > o->max_count)
        return tl_fail(err, TL_ERR_INVALID, "%s: at most %zu entries, got %zu", key, o->max_count,
                       n);
    char **elements = (char **)(base + o->offset);
    size_t *count = (size_t *)(base + o->count_offset);
    free_object_list(o, base);
    char *array = n ? calloc(n, o->table->element_size) : NULL;
    if (n && !array) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", key);
    *elements = array, *count = n;
    for (size_t i = 0; i < n; i++) {
        char item_key[256];
        snprintf(item_key, sizeof item_key, "%s[%zu]", key, i);
        char *element = array + i * o->table->element_size;
        const json_t *item = json_array_get(v, i);
        tl_status st = apply_defaults(o->table, item_key, element, err);
        if (!st && !json_is_object(item)) st = fail_value(err, item_key, "an object", item);
        if (!st) st = read_object(o->table, item_key, item, element, err);
        if (st) return st;
    }
    return TL_OK;
}

/* Stores v as option o's value under base; key is the full key for messages. */
static tl_status read_value(const config_option *o, const char *key, const json_t *v, char *base,
                            tl_error *err) {
    void *field = base + o->offset;
    switch (o->type) {
        case OPT_INT:
            return read_int(o, key, v, field, err);
        case OPT_DOUBLE:
            return read_double(o, key, v, field, err);
        case OPT_BOOL:
            if (!json_is_boolean(v)) return fail_value(err, key, "true or false", v);
            *(bool *)field = json_is_true(v);
            return TL_OK;
        case OPT_STRING:
        case OPT_PATH:
            return read_string(key, v, field, o->default_json && !strcmp(o->default_json, "null"),
                               err);
        case OPT_ENUM:
            return read_enum(o, key, v, field, err);
        case OPT_INT_LIST:
        case OPT_DOUBLE_LIST:
        case OPT_STRING_LIST:
            return read_list(o, key, v, base, err);
        case OPT_OBJECT:
            if (json_is_null(v) && o->default_json && !strcmp(o->default_json, "null"))
                return TL_OK;
            if (!json_is_object(v)) return fail_value(err, key, "an object", v);
            return read_object(o->table, key, v, field, err);
        case OPT_OBJECT_LIST:
            return read_object_list(o, key, v, base, err);
    }
    return tl_fail(err, TL_ERR_INVALID, "%s: unknown option type", key);
}

static void join_key(char *out, size_t size, const char *prefix, const char *key) {
    snprintf(out, size, "%s%s%s", prefix, *prefix ? "." : "", key);
}

static const config_option *find_option(const option_table *t, const char *key) {
    for (size_t i = 0; i < t->n_options; i++)
        if (!strcmp(t->options[i].key, key)) return &t->options[i];
    return NULL;
}

/* Reads every member of obj; unknown keys and missing required keys are errors. */
static tl_status read_object(const option_table *t, const char *prefix, const json_t *obj,
                             char *base, tl_error *err) {
    const char *member;
    json_t *v;
    char key[256];
    json_object_foreach((json_t *)obj, member, v) {
        join_key(key, sizeof key, prefix, member);
        const config_option *o = find_option(t, member);
        if (!o) return tl_fail(err, TL_ERR_INVALID, "%s: unknown key", key);
        tl_status st = read_value(o, key, v, base, err);
        if (st) return st;
    }
    for (size_t i = 0; i < t->n_options; i++) {
        join_key(key, sizeof key, prefix, t->options[i].key);
        if (!t->options[i].default_json && !json_object_get(obj, t->options[i].key))
            return tl_fail(err, TL_ERR_INVALID, "%s: required", key);
    }
    return TL_OK;
}

/* Gives every option of t under base its default (a "null" object: its fields' defaults with
 * enums at -1, marking it absent). */
static tl_status apply_defaults(const option_table *t, const char *prefix, char *base,
                                tl_error *err) {
    for (size_t i = 0; i < t->n_options; i++) {
        const config_option *o = &t->options[i];
        char key[256];
        join_key(key, sizeof key, prefix, o->key);
        tl_status st = TL_OK;
        if (o->type == OPT_ENUM) *(int *)(base + o->offset) = -1;
        if (o->type == OPT_OBJECT) st = apply_defaults(o->table, key, base + o->offset, err);
        if (st || !o->default_json || o->type == OPT_OBJECT) {
            if (st) return st;
            continue;
        }
        json_error_t jerr;
        json_t *v = json_loads(o->default_json, JSON_DECODE_ANY, &jerr);
        if (!v) return tl_fail(err, TL_ERR_INVALID, "%s: bad default %s", key, o->default_json);
        st = read_value(o, key, v, base, err);
        json_decref(v);
        if (st) return st;
    }
    return TL_OK;
}

/* Frees the strings and object lists of t's options under base. */
static void free_table_values(const option_table *t, char *base) {
    for (size_t i = 0; i < t->n_options; i++) {
        const config_option *o = &t->options[i];
        char *field = base + o->offset;
        if (o->type == OPT_STRING || o->type == OPT_PATH)
            free(*(char **)field), *(char **)field = NULL;
        if (o->type == OPT_STRING_LIST) {
            size_t *count = (size_t *)(base + o->count_offset);
            for (size_t k = 0; k < *count; k++) free(((char **)field)[k]);
            *count = 0;
        }
        if (o->type == OPT_OBJECT) free_table_values(o->table, field);
        if (o->type == OPT_OBJECT_LIST) free_object_list(o, base);
    }
}

void train_config_free(train_config *cfg) {
    if (cfg) free_table_values(&ROOT_TABLE, (char *)cfg);
}

/* ---- cross-field rules ---- */

/* Which data set kinds can feed each task (proto/train_config.md). */
static bool kind_serves_task(int kind, int task) {
    switch (task) {
        case TRAIN_TASK_TGIR:
            return kind == TRAIN_DATA_DEMO || kind == TRAIN_DATA_CATALOG ||
                   kind == TRAIN_DATA_FASHIONIQ;
        case TRAIN_TASK_MULTITURN:
            return kind == TRAIN_DATA_DEMO || kind == TRAIN_DATA_CATALOG ||
                   kind == TRAIN_DATA_FASHIONIQ_MULTITURN;
        default:
            return kind == TRAIN_DATA_DEMO || kind == TRAIN_DATA_CATALOG ||
                   kind == TRAIN_DATA_FASHIONGEN;
    }
}

static tl_status check_dataset(const train_dataset_config *d, int task, const char *key,
                               tl_error *err) {
    if (d->kind < 0) return TL_OK; /* an absent eval_dataset */
    if (!kind_serves_task(d->kind, task))
        return tl_fail(err, TL_ERR_INVALID, "%s.kind: %s data cannot train task %s", key,
                       TRAIN_DATASET_KIND_NAMES[d->kind], TRAIN_TASK_NAMES[task]);
    if (d->kind == TRAIN_DATA_CATALOG && task == TRAIN_TASK_TGIR && !d->triplets)
        return tl_fail(err, TL_ERR_INVALID, "%s.triplets: required for task tgir on a catalog",
                       key);
    if (d->kind == TRAIN_DATA_CATALOG && task == TRAIN_TASK_MULTITURN && !d->transactions)
        return tl_fail(err, TL_ERR_INVALID,
                       "%s.transactions: required for task multiturn on a catalog", key);
    if ((d->kind == TRAIN_DATA_FASHIONIQ || d->kind == TRAIN_DATA_FASHIONIQ_MULTITURN) &&
        d->n_categories == 0)
        return tl_fail(err, TL_ERR_INVALID, "%s.categories: must name at least one category", key);
    return TL_OK;
}

static tl_status check_tasks(const train_config *cfg, tl_error *err) {
    double weight_sum = 0;
    if (cfg->n_tasks == 0) return tl_fail(err, TL_ERR_INVALID, "tasks: must list at least one");
    for (size_t i = 0; i < cfg->n_tasks; i++) {
        const train_task_config *t = &cfg->tasks[i];
        char key[64];
        for (size_t j = 0; j < i; j++)
            if (cfg->tasks[j].task == t->task)
                return tl_fail(err, TL_ERR_INVALID, "tasks[%zu].task: %s is listed twice", i,
                               TRAIN_TASK_NAMES[t->task]);
        snprintf(key, sizeof key, "tasks[%zu].dataset", i);
        tl_status st = check_dataset(&t->dataset, t->task, key, err);
        snprintf(key, sizeof key, "tasks[%zu].eval_dataset", i);
        if (!st) st = check_dataset(&t->eval_dataset, t->task, key, err);
        if (st) return st;
        if (t->teacher && cfg->mode == TRAIN_MODE_TEACHERS)
            return tl_fail(err, TL_ERR_INVALID,
                           "tasks[%zu].teacher: not used with mode = teachers (teachers are "
                           "trained without distillation)",
                           i);
        weight_sum += t->weight;
    }
    if (cfg->sampling == TRAIN_SAMPLE_WEIGHTS && !(weight_sum > 0))
        return tl_fail(err, TL_ERR_INVALID,
                       "tasks: sampling = weights needs a task with weight > 0");
    return TL_OK;
}

static bool needs_fusion(const train_config *cfg) {
    for (size_t i = 0; i < cfg->n_tasks; i++)
        if (cfg->tasks[i].task != TRAIN_TASK_XMR) return true;
    return false;
}

static tl_status check_tower(const train_tower_config *t, const char *name, tl_error *err) {
    if (t->width % t->heads)
        return tl_fail(err, TL_ERR_INVALID,
                       "model.%s_width: must be a multiple of model.%s_heads (%lld), got %lld",
                       name, name, (long long)t->heads, (long long)t->width);
    return TL_OK;
}

/* Keys of the model object that only a model trained from scratch may give. */
static const char *const SIZE_KEYS[] = {
    "vision_width", "vision_layers", "vision_heads", "vision_mlp", "text_width", "text_layers",
    "text_heads",   "text_mlp",      "patch",        "image_size", "context",    "projection"};

/* model: the config's "model" object, or NULL when absent. */
static tl_status check_model(const train_config *cfg, const json_t *model, tl_error *err) {
    if (cfg->model.init) {
        for (size_t i = 0; i < sizeof SIZE_KEYS / sizeof SIZE_KEYS[0]; i++)
            if (model && json_object_get(model, SIZE_KEYS[i]))
                return tl_fail(err, TL_ERR_INVALID,
                               "model.%s: not allowed with model.init (the checkpoint's "
                               "config.json fixes the backbone sizes)",
                               SIZE_KEYS[i]);
        if (cfg->model.tokenizer)
            return tl_fail(err, TL_ERR_INVALID,
                           "model.tokenizer: not allowed with model.init (the checkpoint's "
                           "tokenizer is used)");
        return TL_OK;
    }

    tl_status st = check_tower(&cfg->model.vision, "vision", err);
    if (!st) st = check_tower(&cfg->model.text, "text", err);
    if (st) return st;
    if (cfg->model.image_size % cfg->model.patch)
        return tl_fail(err, TL_ERR_INVALID,
                       "model.image_size: must be a multiple of model.patch (%lld), got %lld",
                       (long long)cfg->model.patch, (long long)cfg->model.image_size);
    if (needs_fusion(cfg) && cfg->model.text.layers != cfg->model.vision.layers)
        return tl_fail(err, TL_ERR_INVALID,
                       "model.text_layers: fusion tasks need as many layers as "
                       "model.vision_layers (%lld), got %lld",
                       (long long)cfg->model.vision.layers, (long long)cfg->model.text.layers);
    return TL_OK;
}

static tl_status check_schedule(const train_config *cfg, tl_error *err) {
    if (cfg->optimizer.n_betas != 2)
        return tl_fail(err, TL_ERR_INVALID, "optimizer.betas: must hold exactly 2 numbers, got %zu",
                       cfg->optimizer.n_betas);
    if (cfg->schedule.warmup_steps > cfg->steps)
        return tl_fail(err, TL_ERR_INVALID,
                       "schedule.warmup_steps: must be ≤ steps (%lld), got %lld",
                       (long long)cfg->steps, (long long)cfg->schedule.warmup_steps);
    for (size_t i = 1; i < cfg->schedule.n_milestones; i++)
        if (cfg->schedule.milestones[i] <= cfg->schedule.milestones[i - 1])
            return tl_fail(err, TL_ERR_INVALID,
                           "schedule.milestones[%zu]: must be greater than the one before "
                           "(%lld), got %lld",
                           i, (long long)cfg->schedule.milestones[i - 1],
                           (long long)cfg->schedule.milestones[i]);
    return TL_OK;
}

static tl_status check_freeze(const train_config *cfg, tl_error *err) {
    bool multiturn_only = cfg->n_tasks == 1 && cfg->tasks[0].task == TRAIN_TASK_MULTITURN;
    bool fame_trainable =
        !cfg->freeze.backbone || !cfg->freeze.adapters || !cfg->freeze.xaa || !cfg->freeze.heads;
    if (multiturn_only ? cfg->freeze.ntm : !fame_trainable && cfg->freeze.ntm)
        return tl_fail(err, TL_ERR_INVALID, "freeze: every part the tasks train is frozen");
    return TL_OK;
}

static tl_status check_config(const train_config *cfg, const json_t *root, tl_error *err) {
    const json_t *model = json_object_get(root, "model");
    tl_status st = check_tasks(cfg, err);
    if (!st) st = check_model(cfg, model, err);
    if (!st) st = check_schedule(cfg, err);
    if (!st) st = check_freeze(cfg, err);
    return st;
}

/* ---- paths, parsing, description ---- */

/* Prefixes every relative path option under base with dir + "/". */
static tl_status resolve_paths(const option_table *t, char *base, const char *dir, tl_error *err) {
    for (size_t i = 0; i < t->n_options; i++) {
        const config_option *o = &t->options[i];
        tl_status st = TL_OK;
        if (o->type == OPT_OBJECT) st = resolve_paths(o->table, base + o->offset, dir, err);
        for (size_t k = 0;
             o->type == OPT_OBJECT_LIST && !st && k < *(size_t *)(base + o->count_offset); k++)
            st = resolve_paths(o->table, *(char **)(base + o->offset) + k * o->table->element_size,
                               dir, err);
        if (st) return st;
        char **path = (char **)(base + o->offset);
        if (o->type != OPT_PATH || !*path || (*path)[0] == '/') continue;
        char *joined = NULL;
        if (asprintf(&joined, "%s/%s", dir, *path) < 0)
            return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", o->key);
        free(*path);
        *path = joined;
    }
    return TL_OK;
}

static tl_status parse_root(train_config *cfg, const json_t *root, const char *name,
                            const char *base_dir, tl_error *err) {
    tl_status st = apply_defaults(&ROOT_TABLE, "", (char *)cfg, err);
    if (!st && !json_is_object(root))
        st = tl_fail(err, TL_ERR_INVALID, "%s: must hold a JSON object", name);
    if (!st) st = read_object(&ROOT_TABLE, "", root, (char *)cfg, err);
    if (!st) st = check_config(cfg, root, err);
    if (!st && base_dir) st = resolve_paths(&ROOT_TABLE, (char *)cfg, base_dir, err);
    return st;
}

tl_status train_config_parse(train_config *cfg, const char *json_text, const char *name,
                             const char *base_dir, tl_error *err) {
    memset(cfg, 0, sizeof *cfg);
    json_error_t jerr;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return tl_fail(err, TL_ERR_FORMAT, "%s:%d:%d: %s", name, jerr.line, jerr.column, jerr.text);
    tl_status st = parse_root(cfg, root, name, base_dir, err);
    json_decref(root);
    if (st) train_config_free(cfg);
    return st;
}

tl_status train_config_load(train_config *cfg, const char *path, tl_error *err) {
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "%s: cannot open: %m", path);
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    char chunk[65536];
    size_t n;
    while (mem && (n = fread(chunk, 1, sizeof chunk, f)) > 0) fwrite(chunk, 1, n, mem);
    int read_failed = ferror(f);
    fclose(f);
    if (!mem || fclose(mem) || read_failed) {
        free(text);
        return tl_fail(err, TL_ERR_IO, "%s: cannot read", path);
    }
    char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    tl_status st = dir ? train_config_parse(cfg, text, path, dir, err)
                       : tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    free(dir);
    free(text);
    return st;
}

static void bounds_text(const config_option *o, char *out, size_t size) {
    bool numeric = o->type == OPT_INT || o->type == OPT_DOUBLE || o->type == OPT_INT_LIST ||
                   o->type == OPT_DOUBLE_LIST;
    out[0] = '\0';
    if (o->type == OPT_ENUM)
        for (size_t i = 0; o->choices[i]; i++)
            snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? " \\| " : "",
                     o->choices[i]);
    if (!numeric) return;
    if (isinf(o->max) || o->max >= I64)
        snprintf(out, size, "%s %.15g", o->min_exclusive ? ">" : "≥", o->min);
    else
        snprintf(out, size, "%s%.15g, %.15g%s", o->min_exclusive ? "(" : "[", o->min, o->max,
                 o->max_exclusive ? ")" : "]");
}

static void describe_table(const option_table *t, const char *prefix, train_config_option_fn fn,
                           void *ctx) {
    for (size_t i = 0; i < t->n_options; i++) {
        const config_option *o = &t->options[i];
        char key[256], bounds[160];
        join_key(key, sizeof key, prefix, o->key);
        bounds_text(o, bounds, sizeof bounds);
        fn(ctx, key, TYPE_NAMES[o->type], o->default_json ? o->default_json : "required", bounds,
           o->meaning);
        if (o->type == OPT_OBJECT) describe_table(o->table, key, fn, ctx);
        if (o->type == OPT_OBJECT_LIST) {
            strncat(key, "[]", sizeof key - strlen(key) - 1);
            describe_table(o->table, key, fn, ctx);
        }
    }
}

void train_config_describe(train_config_option_fn fn, void *ctx) {
    describe_table(&ROOT_TABLE, "", fn, ctx);
}
