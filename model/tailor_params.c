/* Loads the FAME-ViL part of a checkpoint: config.json "tailor" fields and the adapter, XAA
 * and head tensors of MODEL.md §5, part by part (a part is all or nothing).
 * Not for: the CLIP tensors (clip.c), the "ntm" object and ntm.* tensors (ntm*.c). */
#include "tailor_params.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BOTTLENECK 64 /* MODEL.md §2: adapter_dim and xaa_dim default */
#define MAX_BOTTLENECK     65536
#define MAX_SCR_LABELS     100000

static const char *const task_names[TL_TASK_COUNT] = {"xmr", "tgir", "scr", "fic"};

const char *tl_task_name(int task) {
    return task >= 0 && task < TL_TASK_COUNT ? task_names[task] : NULL;
}

int tl_task_from_name(const char *name) {
    for (int t = 0; t < TL_TASK_COUNT; t++)
        if (!strcmp(name, task_names[t])) return t;
    return -1;
}

/* ---- tensor lists: every tensor of one part, bound together ---- */

typedef struct binding {
    char name[128];
    int ndim;
    int64_t shape[2];
    const float **dst; /* device view, or NULL for a scalar */
    float *scalar;     /* host copy for [1] tensors, or NULL */
} binding;

typedef struct part_list {
    binding *items;
    int n, cap;
    int failed; /* allocation failed while adding */
} part_list;

static void add_tensor(part_list *pl, const float **dst, float *scalar, int64_t d0, int64_t d1,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Appends one tensor of shape [d0] (d1 = 0) or [d0, d1] named by fmt. */
static void add_tensor(part_list *pl, const float **dst, float *scalar, int64_t d0, int64_t d1,
                       const char *fmt, ...) {
    if (pl->n == pl->cap) {
        int cap = pl->cap ? 2 * pl->cap : 64;
        binding *items = realloc(pl->items, (size_t)cap * sizeof *items);
        if (!items) {
            pl->failed = 1;
            return;
        }
        pl->items = items;
        pl->cap = cap;
    }
    binding *b = &pl->items[pl->n++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->name, sizeof b->name, fmt, ap);
    va_end(ap);
    b->ndim = d1 ? 2 : 1;
    b->shape[0] = d0;
    b->shape[1] = d1;
    b->dst = dst;
    b->scalar = scalar;
}

/* Binds every tensor of pl. *present: 1 when all were bound, 0 when none exists; a part with
 * only some of its tensors, or a wrong shape, is an error naming the tensor. */
static tl_status bind_part(part_list *pl, st_file *st, const char *part, int *present,
                           tl_error *err) {
    *present = 0;
    if (pl->failed) return tl_fail(err, TL_ERR_NOMEM, "out of memory listing %s tensors", part);
    int found = 0, first_missing = -1;
    for (int i = 0; i < pl->n; i++) {
        if (st_find(st, pl->items[i].name))
            found++;
        else if (first_missing < 0)
            first_missing = i;
    }
    if (found == 0) return TL_OK;
    if (first_missing >= 0)
        return tl_fail(err, TL_ERR_NOT_FOUND,
                       "%s is partially present: tensor '%s' is missing (%d of %d found)", part,
                       pl->items[first_missing].name, found, pl->n);
    for (int i = 0; i < pl->n; i++) {
        binding *b = &pl->items[i];
        const float *view = NULL;
        tl_status s = st_get_f32(st, b->name, b->ndim, b->shape, &view, err);
        if (s) return tl_error_prefix(err, "%s", part);
        if (b->dst) *b->dst = view;
        if (b->scalar) *b->scalar = view[0];
    }
    *present = 1;
    return TL_OK;
}

static void list_adapter(part_list *pl, adapter_params *a, int dim, int rank, const char *prefix) {
    a->dim = dim;
    a->rank = rank;
    add_tensor(pl, &a->ln_w, NULL, dim, 0, "%s.ln.weight", prefix);
    add_tensor(pl, &a->ln_b, NULL, dim, 0, "%s.ln.bias", prefix);
    add_tensor(pl, &a->down_w, NULL, rank, dim, "%s.down.weight", prefix);
    add_tensor(pl, &a->down_b, NULL, rank, 0, "%s.down.bias", prefix);
    add_tensor(pl, &a->up_w, NULL, dim, rank, "%s.up.weight", prefix);
    add_tensor(pl, &a->up_b, NULL, dim, 0, "%s.up.bias", prefix);
    add_tensor(pl, &a->scale, NULL, 1, 0, "%s.scale", prefix);
}

static void list_xaa(part_list *pl, xaa_params *x, int dq, int dc, int heads, int rank,
                     const char *layer) {
    x->dq = dq;
    x->dc = dc;
    x->heads = heads;
    add_tensor(pl, &x->ln_q_w, NULL, dq, 0, "%s.xaa.ln_q.weight", layer);
    add_tensor(pl, &x->ln_q_b, NULL, dq, 0, "%s.xaa.ln_q.bias", layer);
    add_tensor(pl, &x->ln_kv_w, NULL, dc, 0, "%s.xaa.ln_kv.weight", layer);
    add_tensor(pl, &x->ln_kv_b, NULL, dc, 0, "%s.xaa.ln_kv.bias", layer);
    add_tensor(pl, &x->q_w, NULL, dq, dq, "%s.xaa.q.weight", layer);
    add_tensor(pl, &x->q_b, NULL, dq, 0, "%s.xaa.q.bias", layer);
    add_tensor(pl, &x->k_w, NULL, dq, dc, "%s.xaa.k.weight", layer);
    add_tensor(pl, &x->k_b, NULL, dq, 0, "%s.xaa.k.bias", layer);
    add_tensor(pl, &x->v_w, NULL, dq, dc, "%s.xaa.v.weight", layer);
    add_tensor(pl, &x->v_b, NULL, dq, 0, "%s.xaa.v.bias", layer);
    char prefix[96];
    snprintf(prefix, sizeof prefix, "%s.xaa.adapter", layer);
    list_adapter(pl, &x->adapter, dq, rank, prefix);
}

static const char *tower_prefix(const tailor_params *p, const tower_adapters *t) {
    return t == &p->vision ? "vision_model" : "text_model";
}

/* Binds TSA_task in every layer of both towers. */
static tl_status load_tsa(tailor_params *p, st_file *st, int task, tl_error *err) {
    tower_adapters *towers[2] = {&p->vision, &p->text};
    part_list pl = {0};
    for (int k = 0; k < 2; k++) {
        tower_adapters *t = towers[k];
        t->tsa[task] = calloc((size_t)t->n_layers, sizeof(adapter_params));
        if (!t->tsa[task]) pl.failed = 1;
        for (int l = 0; l < t->n_layers && !pl.failed; l++) {
            char prefix[96];
            snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.tsa.%s", tower_prefix(p, t), l,
                     task_names[task]);
            list_adapter(&pl, &t->tsa[task][l], t->width, p->adapter_dim, prefix);
        }
    }
    char part[32];
    snprintf(part, sizeof part, "TSA %s", task_names[task]);
    int present;
    tl_status s = bind_part(&pl, st, part, &present, err);
    free(pl.items);
    if (present) p->parts |= TL_PART_TSA_XMR << task;
    for (int k = 0; k < 2 && !present; k++) {
        free(towers[k]->tsa[task]);
        towers[k]->tsa[task] = NULL;
    }
    return s;
}

/* Binds the XAA of every layer of both towers; each reads the other tower. */
static tl_status load_xaa(tailor_params *p, st_file *st, tl_error *err) {
    tower_adapters *towers[2] = {&p->vision, &p->text};
    part_list pl = {0};
    for (int k = 0; k < 2; k++) {
        tower_adapters *t = towers[k], *other = towers[1 - k];
        t->xaa = calloc((size_t)t->n_layers, sizeof(xaa_params));
        if (!t->xaa) pl.failed = 1;
        for (int l = 0; l < t->n_layers && !pl.failed; l++) {
            char layer[64];
            snprintf(layer, sizeof layer, "%s.encoder.layers.%d", tower_prefix(p, t), l);
            list_xaa(&pl, &t->xaa[l], t->width, other->width, t->heads, p->xaa_dim, layer);
        }
    }
    int present;
    tl_status s = bind_part(&pl, st, "XAA", &present, err);
    free(pl.items);
    if (present) p->parts |= TL_PART_XAA;
    for (int k = 0; k < 2 && !present; k++) {
        free(towers[k]->xaa);
        towers[k]->xaa = NULL;
    }
    if (!s && present && p->vision.n_layers != p->text.n_layers)
        return tl_fail(err, TL_ERR_FORMAT,
                       "XAA needs equal layer counts in both towers (vision %d, text %d)",
                       p->vision.n_layers, p->text.n_layers);
    return s;
}

/* Binds the head of task (heads.{task}.*). The SCR head's class count is the label count. */
static tl_status load_head(tailor_params *p, st_file *st, int task, const clip_config *cfg,
                           tl_error *err) {
    part_list pl = {0};
    const char *name = task_names[task];
    if (task == TL_TASK_SCR && !p->scr_labels) {
        if (st_find(st, "heads.scr.weight") || st_find(st, "heads.scr.bias"))
            return tl_fail(err, TL_ERR_FORMAT, "heads.scr is present but tailor.scr_labels is not");
        return TL_OK;
    }
    if (task == TL_TASK_XMR || task == TL_TASK_TGIR) {
        add_tensor(&pl, NULL, &p->head_scale[task], 1, 0, "heads.%s.scale", name);
    } else if (task == TL_TASK_SCR) {
        add_tensor(&pl, &p->scr_w, NULL, p->scr_classes, cfg->projection_dim, "heads.scr.weight");
        add_tensor(&pl, &p->scr_b, NULL, p->scr_classes, 0, "heads.scr.bias");
    } else {
        int64_t vocab = cfg->text.vocab_size;
        add_tensor(&pl, &p->fic_w, NULL, vocab, cfg->text.tower.hidden_size, "heads.fic.weight");
        add_tensor(&pl, &p->fic_b, NULL, vocab, 0, "heads.fic.bias");
    }
    char part[32];
    snprintf(part, sizeof part, "head %s", name);
    int present;
    tl_status s = bind_part(&pl, st, part, &present, err);
    free(pl.items);
    if (present) p->parts |= TL_PART_HEAD_XMR << task;
    return s;
}

/* ---- config.json "tailor" ---- */

static tl_status read_bottleneck(const json_t *tailor, const char *key, int *out, tl_error *err) {
    const json_t *v = json_object_get(tailor, key);
    *out = DEFAULT_BOTTLENECK;
    if (!v) return TL_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_BOTTLENECK)
        return tl_fail(err, TL_ERR_FORMAT, "tailor.%s must be an integer in 1..%d", key,
                       MAX_BOTTLENECK);
    *out = (int)json_integer_value(v);
    return TL_OK;
}

static tl_status read_tasks(const json_t *tailor, tl_error *err) {
    const json_t *tasks = json_object_get(tailor, "tasks");
    if (!tasks) return TL_OK;
    if (!json_is_array(tasks)) return tl_fail(err, TL_ERR_FORMAT, "tailor.tasks must be an array");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const char *name = json_string_value(json_array_get(tasks, i));
        if (!name || tl_task_from_name(name) < 0)
            return tl_fail(err, TL_ERR_FORMAT,
                           "tailor.tasks[%zu] is not one of xmr, tgir, scr, fic", i);
    }
    return TL_OK;
}

static tl_status read_labels(tailor_params *p, const json_t *tailor, tl_error *err) {
    const json_t *labels = json_object_get(tailor, "scr_labels");
    if (!labels) return TL_OK;
    size_t n = json_array_size(labels);
    if (!json_is_array(labels) || n == 0 || n > MAX_SCR_LABELS)
        return tl_fail(err, TL_ERR_FORMAT, "tailor.scr_labels must be an array of 1..%d strings",
                       MAX_SCR_LABELS);
    p->scr_labels = calloc(n, sizeof(char *));
    if (!p->scr_labels) return tl_fail(err, TL_ERR_NOMEM, "out of memory for scr_labels");
    p->scr_classes = (int)n;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(labels, i));
        if (!s || !*s)
            return tl_fail(err, TL_ERR_FORMAT, "tailor.scr_labels[%zu] is not a string", i);
        if (!(p->scr_labels[i] = strdup(s))) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    return TL_OK;
}

static tl_status read_tailor_config(tailor_params *p, const json_t *tailor, tl_error *err) {
    p->format = 1;
    p->adapter_dim = p->xaa_dim = DEFAULT_BOTTLENECK;
    if (!tailor || json_is_null(tailor)) return TL_OK;
    if (!json_is_object(tailor))
        return tl_fail(err, TL_ERR_FORMAT, "config.json: \"tailor\" must be an object");
    const json_t *format = json_object_get(tailor, "format");
    if (format && (!json_is_integer(format) || json_integer_value(format) != 1))
        return tl_fail(err, TL_ERR_UNSUPPORTED, "tailor.format must be 1");
    tl_status s = read_bottleneck(tailor, "adapter_dim", &p->adapter_dim, err);
    if (!s) s = read_bottleneck(tailor, "xaa_dim", &p->xaa_dim, err);
    if (!s) s = read_tasks(tailor, err);
    if (!s) s = read_labels(p, tailor, err);
    return s;
}

static void init_tower(tower_adapters *t, const clip_tower_config *c) {
    t->width = c->hidden_size;
    t->n_layers = c->num_hidden_layers;
    t->heads = c->num_attention_heads;
}

tl_status tailor_params_load(tailor_params **out, const clip_config *cfg, st_file *st,
                             tl_error *err) {
    *out = NULL;
    tailor_params *p = calloc(1, sizeof *p);
    if (!p) return tl_fail(err, TL_ERR_NOMEM, "out of memory for tailor parameters");
    init_tower(&p->vision, &cfg->vision.tower);
    init_tower(&p->text, &cfg->text.tower);
    tl_status s = read_tailor_config(p, cfg->tailor, err);
    for (int t = 0; t < TL_TASK_COUNT && !s; t++) s = load_tsa(p, st, t, err);
    if (!s) s = load_xaa(p, st, err);
    for (int t = 0; t < TL_TASK_COUNT && !s; t++) s = load_head(p, st, t, cfg, err);
    if (s) {
        tailor_params_free(p);
        return s;
    }
    *out = p;
    return TL_OK;
}

void tailor_params_free(tailor_params *p) {
    if (!p) return;
    for (int t = 0; t < TL_TASK_COUNT; t++) {
        free(p->vision.tsa[t]);
        free(p->text.tsa[t]);
    }
    free(p->vision.xaa);
    free(p->text.xaa);
    for (int i = 0; i < p->scr_classes && p->scr_labels; i++) free(p->scr_labels[i]);
    free(p->scr_labels);
    free(p);
}
