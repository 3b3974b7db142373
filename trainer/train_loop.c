/* The training loop: set-up (data, tokenizer, model parts, optimiser, schedule, teachers), one
 * sampled task per step, and checkpoints written atomically (temp directory, fsync, exchange)
 * with the loop's position so that --resume repeats the uninterrupted run exactly.
 * Not for: the task forwards and backwards (model/train_tasks.h) or batch assembly. */
#include "train_loop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "eval_run.h"
#include "init.h"
#include "metrics_log.h"
#include "optim.h"
#include "progress.h"
#include "rng.h"
#include "safetensors.h"
#include "schedule.h"
#include "tailor_model.h"
#include "tokenizer.h"
#include "train_batch.h"
#include "train_model.h"
#include "train_scratch.h"
#include "train_tasks.h"

/* RNG streams: each step draws its task and captions from its own stream, each task's epoch
 * permutation from another, so the position (step, cursors, epochs) is the whole RNG state. */
#define STREAM_STEP  (UINT64_C(1) << 40)
#define STREAM_EPOCH (UINT64_C(2) << 40)

typedef struct task_state {
    const train_task_config *tc;
    dataset ds;
    batch_source src;
    int *class_of_label; /* scr: [ds.n_labels] */
    size_t pool;
    int *perm;             /* [pool]: this epoch's order */
    int64_t cursor, epoch; /* next position in perm; epochs begun */
    dataset eval_ds;       /* tc->eval_dataset when given (has_eval) */
    int has_eval;
    train_model teacher; /* distillation teacher (frozen) when tc->teacher */
    int has_teacher;
    float *teacher_logits; /* [B·max(B, classes, context·vocab)] */
} task_state;

typedef struct trainer {
    const train_config *cfg;
    const char *out_dir;
    tl_backend *be;
    tl_tokenizer *tok;
    char *tok_dir; /* the directory the tokenizer came from (copied into checkpoints) */
    json_t *tailor;
    train_model m;
    adamw opt;
    lr_schedule sched;
    task_state tasks[TRAIN_N_TASKS];
    size_t n_tasks;
    train_arena ar;
    int64_t step;
    tl_model *features; /* multiturn inputs: the model of the latest checkpoint */
    metrics_log *log;
} trainer;

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- set-up ---- */

/* Bits of the parts a task trains (before freezing). */
static unsigned task_parts(int task) {
    unsigned clip = 1u << TRAIN_PART_CLIP, xaa = 1u << TRAIN_PART_XAA;
    switch (task) {
        case TRAIN_TASK_XMR:
            return clip | 1u << TRAIN_PART_TSA_XMR | 1u << TRAIN_PART_HEAD_XMR;
        case TRAIN_TASK_TGIR:
            return clip | xaa | 1u << TRAIN_PART_TSA_TGIR | 1u << TRAIN_PART_HEAD_TGIR;
        case TRAIN_TASK_SCR:
            return clip | xaa | 1u << TRAIN_PART_TSA_SCR | 1u << TRAIN_PART_HEAD_SCR;
        case TRAIN_TASK_FIC:
            return clip | xaa | 1u << TRAIN_PART_TSA_FIC | 1u << TRAIN_PART_HEAD_FIC;
        default:
            return 1u << TRAIN_PART_NTM;
    }
}

static unsigned frozen_parts(const train_config *cfg) {
    unsigned f = 0;
    if (cfg->freeze.backbone) f |= 1u << TRAIN_PART_CLIP;
    for (int k = 0; k < TL_TASK_COUNT; k++) {
        if (cfg->freeze.adapters) f |= 1u << (TRAIN_PART_TSA_XMR + k);
        if (cfg->freeze.heads) f |= 1u << (TRAIN_PART_HEAD_XMR + k);
    }
    if (cfg->freeze.xaa) f |= 1u << TRAIN_PART_XAA;
    if (cfg->freeze.ntm) f |= 1u << TRAIN_PART_NTM;
    return f;
}

static unsigned trained_parts(const trainer *t) {
    unsigned bits = 0;
    for (size_t i = 0; i < t->n_tasks; i++) bits |= task_parts(t->tasks[i].tc->task);
    return bits & ~frozen_parts(t->cfg);
}

/* The SCR class names: the initial checkpoint's, else the scr task's data set labels, else
 * the first data set's labels (one placeholder class when none has labels). */
static json_t *scr_labels(const trainer *t, const json_t *init_tailor) {
    const json_t *given = json_object_get(init_tailor, "scr_labels");
    if (json_is_array(given) && json_array_size(given)) return json_deep_copy(given);
    const dataset *ds = &t->tasks[0].ds;
    for (size_t i = 0; i < t->n_tasks; i++)
        if (t->tasks[i].tc->task == TRAIN_TASK_SCR) ds = &t->tasks[i].ds;
    json_t *list = json_array();
    for (size_t i = 0; list && i < ds->n_labels; i++)
        json_array_append_new(list, json_string(ds->labels[i]));
    if (list && !json_array_size(list)) json_array_append_new(list, json_string("none"));
    return list;
}

/* The "tailor" object of the checkpoints: sizes from the config for parts the initial
 * checkpoint lacks. */
static tl_status build_tailor(trainer *t, const json_t *init_root, tl_error *err) {
    const train_config *c = t->cfg;
    const json_t *given = json_object_get(init_root, "tailor");
    if (given)
        return (t->tailor = json_deep_copy(given)) ? TL_OK
                                                   : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    json_int_t P = json_integer_value(json_object_get(init_root, "projection_dim"));
    if (P <= 0) P = 512; /* HF's default projection_dim */
    t->tailor = json_pack(
        "{s:i, s:[s,s,s,s], s:I, s:I, s:o, s:{s:I, s:I, s:I, s:I}}", "format", 1, "tasks", "xmr",
        "tgir", "scr", "fic", "adapter_dim", (json_int_t)c->model.adapter_dim, "xaa_dim",
        (json_int_t)c->model.xaa_dim, "scr_labels", scr_labels(t, NULL), "ntm", "blocks",
        (json_int_t)c->model.ntm.blocks, "slots", (json_int_t)c->model.ntm.slots, "width", P,
        "hidden", c->model.ntm.hidden ? (json_int_t)c->model.ntm.hidden : P);
    return t->tailor ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory for the tailor object");
}

/* The SCR class of each data set label, by name; a label the model lacks is an error. */
static tl_status map_scr_labels(trainer *t, task_state *ts, tl_error *err) {
    const json_t *names = json_object_get(t->tailor, "scr_labels");
    ts->class_of_label = calloc(ts->ds.n_labels + 1, sizeof *ts->class_of_label);
    if (!ts->class_of_label) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (size_t l = 0; l < ts->ds.n_labels; l++) {
        ts->class_of_label[l] = -1;
        for (size_t c = 0; c < json_array_size(names); c++)
            if (!strcmp(json_string_value(json_array_get(names, c)), ts->ds.labels[l]))
                ts->class_of_label[l] = (int)c;
        if (ts->class_of_label[l] < 0)
            return tl_fail(err, TL_ERR_INVALID,
                           "%s: subcategory '%s' is not a class of the model's scr_labels",
                           ts->ds.source, ts->ds.labels[l]);
    }
    return TL_OK;
}

static tl_status open_task(task_state *ts, const train_task_config *tc, tl_error *err) {
    ts->tc = tc;
    tl_status st = dataset_open(&tc->dataset, &ts->ds, err);
    if (st) return tl_error_prefix(err, "tasks %s: ", TRAIN_TASK_NAMES[tc->task]);
    ts->pool = train_batch_pool_size(&ts->ds, tc->task);
    if (!ts->pool)
        return tl_fail(err, TL_ERR_INVALID, "tasks %s: %s has no samples for this task",
                       TRAIN_TASK_NAMES[tc->task], ts->ds.source);
    ts->perm = malloc(ts->pool * sizeof *ts->perm);
    if (!ts->perm) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (tc->eval_dataset.kind < 0) return TL_OK;
    st = dataset_open(&tc->eval_dataset, &ts->eval_ds, err);
    if (st) return tl_error_prefix(err, "tasks %s.eval_dataset: ", TRAIN_TASK_NAMES[tc->task]);
    ts->has_eval = 1;
    return TL_OK;
}

static int teacher_logit_width(const train_model *m, int task, int B, int context) {
    if (task == TRAIN_TASK_SCR) return m->scr_classes;
    if (task == TRAIN_TASK_FIC) return context * m->text.vocab;
    return B;
}

static tl_status open_teacher(trainer *t, task_state *ts, tl_error *err) {
    const train_task_config *tc = ts->tc;
    if (!tc->teacher) return TL_OK;
    if (tc->task == TRAIN_TASK_MULTITURN)
        return tl_fail(err, TL_ERR_UNSUPPORTED,
                       "tasks multiturn.teacher: the CM-NTM has no distillation");
    if (tc->distill_weight != 1.0)
        return tl_fail(err, TL_ERR_UNSUPPORTED,
                       "tasks %s.distill_weight: only 1 is supported (L = L_task + L_KD)",
                       TRAIN_TASK_NAMES[tc->task]);
    tl_status st = train_model_load(&ts->teacher, t->be, tc->teacher, 0, err);
    if (st) return tl_error_prefix(err, "tasks %s.teacher: ", TRAIN_TASK_NAMES[tc->task]);
    ts->has_teacher = 1;
    int B = (int)t->cfg->batch_size;
    size_t w = (size_t)teacher_logit_width(&ts->teacher, tc->task, B, t->m.text.positions);
    ts->teacher_logits = malloc((size_t)B * w * sizeof *ts->teacher_logits);
    return ts->teacher_logits ? TL_OK
                              : tl_fail(err, TL_ERR_NOMEM, "out of memory for teacher logits");
}

/* Loads the model: the run's checkpoint on resume, else model.init with fresh parts for
 * whatever it lacks. */
static tl_status open_model(trainer *t, const char *init, int resume, tl_error *err) {
    char *ckpt = path_join(t->out_dir, TRAIN_CHECKPOINT_DIR);
    if (!ckpt) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    unsigned missing = 0;
    train_open_options o = {trained_parts(t), t->tailor, 1};
    tl_status st = resume ? train_model_load(&t->m, t->be, ckpt, o.trained, err)
                          : train_model_open(&t->m, t->be, init, &o, &missing, err);
    free(ckpt);
    if (st) return tl_error_prefix(err, "%s: ", resume ? "resume" : "model.init");
    missing &= ~(1u << TRAIN_PART_CLIP);
    return missing ? train_model_init_parts(&t->m, missing, (uint64_t)t->cfg->seed, err) : TL_OK;
}

static tl_status open_optimiser(trainer *t, tl_error *err) {
    const train_config *c = t->cfg;
    param_set *sets[TRAIN_PART_COUNT];
    double mult[TRAIN_PART_COUNT];
    for (int p = 0; p < TRAIN_PART_COUNT; p++)
        sets[p] = &t->m.parts[p],
        mult[p] = p == TRAIN_PART_CLIP ? c->optimizer.backbone_lr_mult : 1;
    lr_group_rule rules[TRAIN_MAX_LIST];
    for (size_t i = 0; i < c->optimizer.n_groups; i++)
        rules[i] = (lr_group_rule){c->optimizer.groups[i].pattern, c->optimizer.groups[i].lr_mult,
                                   c->optimizer.groups[i].weight_decay};
    adamw_config ac = {c->optimizer.betas[0], c->optimizer.betas[1], c->optimizer.eps,
                       c->optimizer.weight_decay, c->optimizer.decay_biases};
    tl_status st =
        adamw_init(&t->opt, &ac, sets, mult, TRAIN_PART_COUNT, rules, c->optimizer.n_groups, err);
    if (st) return st;
    lr_schedule *s = &t->sched;
    memset(s, 0, sizeof *s);
    s->kind = c->schedule.kind == TRAIN_SCHEDULE_COSINE ? SCHEDULE_COSINE : SCHEDULE_MULTISTEP;
    s->base_lr = c->optimizer.lr, s->warmup_iters = c->schedule.warmup_steps;
    s->warmup_factor = c->schedule.warmup_factor;
    for (size_t i = 0; i < c->schedule.n_milestones && i < SCHEDULE_MAX_MILESTONES; i++)
        s->milestones[s->n_milestones++] = c->schedule.milestones[i];
    s->gamma = c->schedule.gamma, s->total_iters = c->steps,
    s->min_factor = c->schedule.min_lr_factor;
    return schedule_validate(s, err);
}

/* The tokenizer (vocab.json, merges.txt) in dir: model.init's (matching its vocabulary) or
 * model.tokenizer. */
static tl_status open_tokenizer(trainer *t, const char *init, tl_error *err) {
    tl_status st = tok_load_dir(&t->tok, init, err);
    if (st)
        return tl_error_prefix(err, "%s: ", t->cfg->model.init ? "model.init" : "model.tokenizer");
    t->tok_dir = strdup(init);
    return t->tok_dir ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
}

/* ---- checkpoints ---- */

static tl_status fsync_path(const char *path, tl_error *err) {
    int fd = open(path, O_RDONLY);
    int bad = fd < 0 || fsync(fd) != 0;
    if (fd >= 0) close(fd);
    return bad ? tl_fail(err, TL_ERR_IO, "%s: fsync: %s", path, strerror(errno)) : TL_OK;
}

/* Removes dir and the plain files in it (a checkpoint directory has no subdirectories). */
static void remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static tl_status copy_file(const char *from_dir, const char *to_dir, const char *name,
                           tl_error *err) {
    char *from = path_join(from_dir, name), *to = path_join(to_dir, name);
    FILE *in = from ? fopen(from, "rb") : NULL, *out = to ? fopen(to, "wb") : NULL;
    int bad = !in || !out;
    char buf[1 << 16];
    for (size_t n; !bad && (n = fread(buf, 1, sizeof buf, in)) > 0;)
        bad = fwrite(buf, 1, n, out) != n;
    bad = bad || ferror(in) || fflush(out) || fsync(fileno(out));
    tl_status st =
        bad ? tl_fail(err, TL_ERR_IO, "copying %s to %s: %s", name, to_dir, strerror(errno))
            : TL_OK;
    if (in) fclose(in);
    if (out && fclose(out)) st = st ? st : tl_fail(err, TL_ERR_IO, "%s: %s", to, strerror(errno));
    free(from), free(to);
    return st;
}

static tl_status write_config(const trainer *t, const char *dir, tl_error *err) {
    json_t *root = json_deep_copy(t->m.cfg.root);
    char *path = path_join(dir, "config.json");
    int bad = !root || !path || json_object_set(root, "tailor", t->tailor) ||
              json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS);
    tl_status st = bad ? tl_fail(err, TL_ERR_IO, "%s: cannot write", path ? path : dir) : TL_OK;
    if (!st) st = fsync_path(path, err);
    json_decref(root), free(path);
    return st;
}

static tl_status save_loop_state(const trainer *t, const char *dir, tl_error *err) {
    int64_t step = t->step, cursor[TRAIN_N_TASKS], epoch[TRAIN_N_TASKS];
    for (size_t i = 0; i < t->n_tasks; i++)
        cursor[i] = t->tasks[i].cursor, epoch[i] = t->tasks[i].epoch;
    size_t nb = t->n_tasks * sizeof(int64_t);
    int64_t n = (int64_t)t->n_tasks;
    st_tensor ts[3] = {{"step", ST_I64, 0, {0}, &step, sizeof step},
                       {"task_cursor", ST_I64, 1, {n}, cursor, nb},
                       {"task_epoch", ST_I64, 1, {n}, epoch, nb}};
    char *path = path_join(dir, TRAIN_LOOP_STATE);
    tl_status st =
        path ? st_write(path, ts, 3, NULL, err) : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    free(path);
    return st;
}

/* Writes every file of a checkpoint into dir; the optimiser and loop state only with_state. */
static tl_status write_checkpoint_files(const trainer *t, const char *dir, int with_state,
                                        tl_error *err) {
    char *model = path_join(dir, "model.safetensors"),
         *state = path_join(dir, "trainer_state.safetensors");
    tl_status st = model && state ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!st) st = write_config(t, dir, err);
    if (!st) st = copy_file(t->tok_dir, dir, "vocab.json", err);
    if (!st) st = copy_file(t->tok_dir, dir, "merges.txt", err);
    if (!st) st = train_model_save(&t->m, model, err);
    if (!st && with_state) st = adamw_save(&t->opt, state, err);
    if (!st && with_state) st = save_loop_state(t, dir, err);
    free(model), free(state);
    return st;
}

/* OUTPUT_DIR/name replaced atomically: written to name.tmp, synced, then exchanged with the
 * old one (renameat2 RENAME_EXCHANGE), which is removed. */
static tl_status write_checkpoint_dir(const trainer *t, const char *name, int with_state,
                                      tl_error *err) {
    char *dst = path_join(t->out_dir, name), *tmp = NULL;
    if (dst && asprintf(&tmp, "%s.tmp", dst) < 0) tmp = NULL;
    tl_status st = tmp && dst ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!st) remove_flat_dir(tmp);
    if (!st && mkdir(tmp, 0755) != 0) st = tl_fail(err, TL_ERR_IO, "%s: %s", tmp, strerror(errno));
    if (!st) st = write_checkpoint_files(t, tmp, with_state, err);
    if (!st) st = fsync_path(tmp, err);
    if (!st) {
        int exists = access(dst, F_OK) == 0;
        int bad =
            exists ? renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_EXCHANGE) : rename(tmp, dst);
        if (bad) st = tl_fail(err, TL_ERR_IO, "%s: rename: %s", dst, strerror(errno));
        if (!st && exists) remove_flat_dir(tmp);
    }
    if (!st) st = fsync_path(t->out_dir, err);
    if (st) tl_error_prefix(err, "%s at step %lld: ", name, (long long)t->step);
    free(tmp), free(dst);
    return st;
}

static tl_status write_checkpoint(const trainer *t, tl_error *err) {
    return write_checkpoint_dir(t, TRAIN_CHECKPOINT_DIR, 1, err);
}

static tl_status read_i64s(st_file *f, const char *name, int64_t n, int64_t *out, tl_error *err) {
    const st_tensor *x = st_find(f, name);
    if (!x || (n >= 0 && (x->ndim != 1 || x->shape[0] != n)) || (n < 0 && x->ndim != 0))
        return tl_fail(err, TL_ERR_FORMAT, "%s: missing or mis-shaped (%lld entries expected)",
                       name, (long long)(n < 0 ? 1 : n));
    st_to_i64(x, out);
    return TL_OK;
}

/* Restores the optimiser and the loop's position from OUTPUT_DIR/checkpoint. */
static tl_status load_state(trainer *t, tl_error *err) {
    char *dir = path_join(t->out_dir, TRAIN_CHECKPOINT_DIR);
    char *state = dir ? path_join(dir, "trainer_state.safetensors") : NULL;
    char *loop = dir ? path_join(dir, TRAIN_LOOP_STATE) : NULL;
    st_file *f = NULL;
    int64_t cursor[TRAIN_N_TASKS], epoch[TRAIN_N_TASKS], n = (int64_t)t->n_tasks;
    tl_status st =
        loop ? adamw_load(&t->opt, state, err) : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!st) st = st_open(&f, loop, err);
    if (!st) st = read_i64s(f, "step", -1, &t->step, err);
    if (!st) st = read_i64s(f, "task_cursor", n, cursor, err);
    if (!st) st = read_i64s(f, "task_epoch", n, epoch, err);
    for (size_t i = 0; !st && i < t->n_tasks; i++) {
        if (cursor[i] < 0 || cursor[i] > (int64_t)t->tasks[i].pool || epoch[i] < 0)
            st = tl_fail(err, TL_ERR_FORMAT, "task_cursor[%zu]: %lld is outside the data set", i,
                         (long long)cursor[i]);
        t->tasks[i].cursor = cursor[i], t->tasks[i].epoch = epoch[i];
    }
    if (f) st_close(f);
    if (st) tl_error_prefix(err, "resume from %s: ", dir ? dir : t->out_dir);
    free(dir), free(state), free(loop);
    return st;
}

/* ---- sampling ---- */

/* perm = the order of epoch ts->epoch (numbered from 1), from its own RNG stream. */
static void shuffle_epoch(const trainer *t, task_state *ts) {
    tl_rng rng;
    rng_seed(&rng, (uint64_t)t->cfg->seed,
             STREAM_EPOCH + ((uint64_t)ts->tc->task << 32) + (uint64_t)ts->epoch);
    for (size_t i = 0; i < ts->pool; i++) ts->perm[i] = (int)i;
    rng_shuffle_ints(&rng, ts->perm, (int)ts->pool);
}

static size_t next_sample(const trainer *t, task_state *ts) {
    if (ts->cursor >= (int64_t)ts->pool) {
        ts->epoch++, ts->cursor = 0;
        shuffle_epoch(t, ts);
    }
    return (size_t)ts->perm[ts->cursor++];
}

static double uniform01(tl_rng *rng) {
    return (double)(rng_next_u64(rng) >> 11) * 0x1p-53;
}

/* The task of this step: P ∝ data set size (proportional) or tasks[].weight. */
static task_state *pick_task(trainer *t, tl_rng *rng) {
    double w[TRAIN_N_TASKS], total = 0;
    for (size_t i = 0; i < t->n_tasks; i++) {
        const task_state *ts = &t->tasks[i];
        w[i] = t->cfg->sampling == TRAIN_SAMPLE_WEIGHTS ? ts->tc->weight : (double)ts->pool;
        total += w[i];
    }
    double u = uniform01(rng) * total;
    for (size_t i = 0; i < t->n_tasks; i++) {
        if (u < w[i] && w[i] > 0) return &t->tasks[i];
        u -= w[i];
    }
    for (size_t i = t->n_tasks; i-- > 0;)
        if (w[i] > 0) return &t->tasks[i];
    return &t->tasks[0];
}

/* ---- one step ---- */

static void l2_normalise_rows(float *x, int rows, int dim) {
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
        float inv = ss > 0 ? (float)(1 / sqrt(ss)) : 0;
        for (int i = 0; i < dim; i++) x[r * dim + i] *= inv;
    }
}

/* The CM-NTM step: x_t = n(fused(ref_t, text_t)) and the gallery n(v(target; TSA_tgir)) come
 * from the model of the latest checkpoint (t->features), forward only: nothing flows back
 * into CLIP, the adapters or XAA from this loss; only the NTM trains on it. */
static tl_status ntm_step(trainer *t, const train_batch *b, double *loss, tl_error *err) {
    int B = b->B, T = b->turns, P = t->m.projection_dim;
    size_t px = (size_t)3 * t->m.vision.image_size * t->m.vision.image_size;
    float *x = malloc((size_t)T * B * P * sizeof *x), *g = malloc((size_t)B * P * sizeof *g);
    tl_status st = x && g ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory for NTM inputs");
    for (int k = 0; k < T && !st; k++)
        st = tl_fuse_ids(t->features, TL_TASK_TGIR, b->pixels + (size_t)k * B * px,
                         b->ids + (size_t)k * B * b->stride, b->stride, B, NULL, NULL,
                         x + (size_t)k * B * P, err);
    if (!st) st = tl_encode_pixels_task(t->features, TL_TASK_TGIR, b->target_pixels, B, g, err);
    if (!st) {
        l2_normalise_rows(x, T * B, P);
        l2_normalise_rows(g, B, P);
        st = train_ntm_step(&t->m, &t->ar, x, g, T, B, loss, err);
    }
    free(x), free(g);
    return st;
}

/* One task step on model m; kd may be NULL. */
static tl_status task_step(train_model *m, train_arena *ar, int task, const train_batch *b,
                           const train_distill *kd, double *loss, tl_error *err) {
    int B = b->B, L = b->stride;
    switch (task) {
        case TRAIN_TASK_XMR:
            return train_xmr_step(m, ar, b->pixels, b->ids, L, B, kd, loss, err);
        case TRAIN_TASK_TGIR:
            return train_tgir_step(m, ar, b->pixels, b->ids, L, b->target_pixels, B, kd, loss, err);
        case TRAIN_TASK_SCR:
            return train_scr_step(m, ar, b->pixels, b->ids, L, b->labels, B, kd, loss, err);
        default:
            return train_fic_step(m, ar, b->pixels, b->ids, B, L, kd, loss, err);
    }
}

/* The student's step, after the frozen teacher's forward on the same batch when it has one. */
static tl_status student_step(trainer *t, task_state *ts, const train_batch *b, double *loss,
                              tl_error *err) {
    int task = ts->tc->task;
    if (task == TRAIN_TASK_MULTITURN) return ntm_step(t, b, loss, err);
    if (!ts->has_teacher) return task_step(&t->m, &t->ar, task, b, NULL, loss, err);
    double teacher_loss;
    train_distill run = {NULL, ts->teacher_logits, 1}, kd = {ts->teacher_logits, NULL, 0};
    tl_status st = task_step(&ts->teacher, &t->ar, task, b, &run, &teacher_loss, err);
    if (st) return tl_error_prefix(err, "teacher: ");
    return task_step(&t->m, &t->ar, task, b, &kd, loss, err);
}

/* Samples, builds and runs step t->step, then updates the weights. */
static tl_status train_one_step(trainer *t, task_state **done, double *loss, tl_error *err) {
    tl_rng rng;
    rng_seed(&rng, (uint64_t)t->cfg->seed, STREAM_STEP + (uint64_t)t->step);
    task_state *ts = pick_task(t, &rng);
    int B = (int)t->cfg->batch_size;
    size_t *idx = malloc((size_t)B * sizeof *idx);
    uint32_t *pick = malloc((size_t)B * sizeof *pick);
    train_batch b = {0};
    tl_status st = idx && pick ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (int r = 0; r < B && !st; r++)
        idx[r] = next_sample(t, ts), pick[r] = (uint32_t)rng_next_u64(&rng);
    if (!st) st = train_batch_build(&b, &ts->src, ts->tc->task, idx, pick, B, err);
    if (!st) {
        train_model_zero_grad(&t->m);
        st = student_step(t, ts, &b, loss, err);
    }
    if (!st) {
        grad_clip_global_norm(&t->opt, t->cfg->optimizer.grad_clip);
        adamw_step(&t->opt, schedule_lr(&t->sched, t->step));
        t->step++;
    }
    if (st)
        tl_error_prefix(err, "step %lld (%s): ", (long long)t->step,
                        TRAIN_TASK_NAMES[ts->tc->task]);
    train_batch_free(&b);
    free(idx), free(pick);
    *done = ts;
    return st;
}

/* ---- the run ---- */

static int has_task(const trainer *t, int task) {
    for (size_t i = 0; i < t->n_tasks; i++)
        if (t->tasks[i].tc->task == task) return 1;
    return 0;
}

/* Opens the multi-turn feature model on OUTPUT_DIR/TRAIN_FEATURES_DIR. */
static tl_status open_features(trainer *t, tl_error *err) {
    char *dir = path_join(t->out_dir, TRAIN_FEATURES_DIR);
    tl_model_close(t->features);
    t->features = NULL;
    tl_model_opts o = {(int)t->cfg->threads, NULL, 0, 0};
    tl_status st = dir ? tl_model_open(&t->features, dir, &o, err)
                       : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    free(dir);
    return st ? tl_error_prefix(err, "multiturn features: ") : TL_OK;
}

/* Snapshots the weights as the multi-turn feature model, at step 0 and every
 * checkpoint_interval steps (the same steps in a resumed run). */
static tl_status refresh_features(trainer *t, tl_error *err) {
    if (!has_task(t, TRAIN_TASK_MULTITURN)) return TL_OK;
    tl_status st = write_checkpoint_dir(t, TRAIN_FEATURES_DIR, 0, err);
    return st ? st : open_features(t, err);
}

/* The starting checkpoint of a run from scratch, in dir. */
static tl_status write_scratch(const trainer *t, const char *dir, tl_error *err) {
    remove_flat_dir(dir);
    if (mkdir(dir, 0755) != 0) return tl_fail(err, TL_ERR_IO, "%s: %s", dir, strerror(errno));
    tl_status st = train_scratch_write(t->cfg, tok_vocab_size(t->tok), dir, err);
    return st ? tl_error_prefix(err, "initial weights: ") : TL_OK;
}

/* Tokenizer, "tailor" object and model, from model.init or (from scratch) OUTPUT_DIR/init. */
static tl_status open_start(trainer *t, int resume, tl_error *err) {
    const train_config *cfg = t->cfg;
    if (!cfg->model.init && !cfg->model.tokenizer)
        return tl_fail(err, TL_ERR_INVALID, "model.tokenizer: required without model.init");
    tl_status st = open_tokenizer(t, cfg->model.init ? cfg->model.init : cfg->model.tokenizer, err);
    char *init =
        cfg->model.init ? strdup(cfg->model.init) : path_join(t->out_dir, TRAIN_SCRATCH_DIR);
    if (!st && !init) st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!st && !cfg->model.init && !resume) st = write_scratch(t, init, err);
    clip_config init_cfg = {0};
    if (!st) st = clip_config_load_dir(&init_cfg, init, err);
    if (!st) st = build_tailor(t, init_cfg.root, err);
    clip_config_free(&init_cfg);
    if (!st) st = open_model(t, init, resume, err);
    free(init);
    return st;
}

static tl_status trainer_open(trainer *t, const train_config *cfg, const char *out_dir,
                              const train_task_config *tasks, size_t n_tasks, int resume,
                              tl_error *err) {
    memset(t, 0, sizeof *t);
    t->cfg = cfg, t->out_dir = out_dir;
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return tl_fail(err, TL_ERR_IO, "output.dir %s: %s", out_dir, strerror(errno));
    tl_status st = tl_backend_cpu_create(&t->be, (int)cfg->threads, err);
    for (size_t i = 0; i < n_tasks && !st; i++, t->n_tasks++)
        st = open_task(&t->tasks[i], &tasks[i], err);
    if (!st) st = open_start(t, resume, err);
    for (size_t i = 0; i < t->n_tasks && !st; i++) {
        task_state *ts = &t->tasks[i];
        ts->cursor = (int64_t)ts->pool;
        ts->src =
            (batch_source){&ts->ds, t->tok, t->m.vision.image_size, (int)cfg->model.context, NULL};
        if (ts->src.context > t->m.text.positions) ts->src.context = t->m.text.positions;
        if (ts->tc->task == TRAIN_TASK_SCR) st = map_scr_labels(t, ts, err);
        ts->src.class_of_label = ts->class_of_label;
        if (!st) st = open_teacher(t, ts, err);
    }
    if (!st) st = open_optimiser(t, err);
    if (!st && resume) st = load_state(t, err);
    for (size_t i = 0; i < t->n_tasks && !st; i++)
        if (t->tasks[i].epoch > 0) shuffle_epoch(t, &t->tasks[i]);
    char *metrics = st ? NULL : path_join(out_dir, "metrics.jsonl");
    if (!st)
        st = metrics ? metrics_log_open(metrics, &t->log, err)
                     : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    free(metrics);
    if (!st && has_task(t, TRAIN_TASK_MULTITURN))
        st = resume ? open_features(t, err) : refresh_features(t, err);
    return st;
}

static void trainer_close(trainer *t) {
    for (size_t i = 0; i < t->n_tasks; i++) {
        task_state *ts = &t->tasks[i];
        dataset_free(&ts->ds);
        if (ts->has_eval) dataset_free(&ts->eval_ds);
        free(ts->perm), free(ts->class_of_label), free(ts->teacher_logits);
        if (ts->has_teacher) train_model_free(&ts->teacher);
    }
    tl_model_close(t->features);
    metrics_log_close(t->log, NULL);
    train_arena_free(&t->ar);
    if (t->opt.sets) adamw_free(&t->opt);
    if (t->m.be) train_model_free(&t->m);
    json_decref(t->tailor);
    if (t->tok) tok_free(t->tok);
    free(t->tok_dir);
    if (t->be) t->be->destroy(t->be);
}

static tl_status log_step(trainer *t, progress *p, const task_state *ts, double loss, double t0,
                          tl_error *err) {
    double now = progress_now(),
           rate = t->step > p->first_step
                      ? (double)(t->step - p->first_step) * (double)t->cfg->batch_size / (now - t0)
                      : 0;
    const char *name = TRAIN_TASK_NAMES[ts->tc->task];
    if (p->out) progress_update(p, t->step, name, loss, rate, now);
    if (t->step % t->cfg->log_interval) return TL_OK;
    return metrics_log_step(t->log, t->step, name, loss, schedule_lr(&t->sched, t->step - 1), rate,
                            now - t0, err);
}

/* The section of eval_run that scores task. */
static eval_section_id eval_section_of(int task) {
    static const eval_section_id ids[TRAIN_N_TASKS] = {EVAL_XMR, EVAL_TGIR, EVAL_SCR, EVAL_FIC,
                                                       EVAL_MULTITURN};
    return ids[task];
}

/* Logs task's evaluation section of report as "TASK.METRIC" values. */
static tl_status log_eval(trainer *t, int task, const eval_report *report, tl_error *err) {
    const char *names[EVAL_MAX_METRICS];
    double values[EVAL_MAX_METRICS];
    char full[EVAL_MAX_METRICS][64];
    const char *full_names[EVAL_MAX_METRICS];
    size_t n = eval_section_metrics(report, eval_section_of(task), names, values);
    for (size_t i = 0; i < n; i++) {
        snprintf(full[i], sizeof full[i], "%s.%s", TRAIN_TASK_NAMES[task], names[i]);
        full_names[i] = full[i];
    }
    return n ? metrics_log_eval(t->log, t->step, full_names, values, n, err) : TL_OK;
}

/* The earlier task whose eval_dataset is the same data (its report serves task i), or i. */
static size_t same_eval_data(const trainer *t, size_t i) {
    const train_dataset_config *a = &t->tasks[i].tc->eval_dataset;
    for (size_t j = 0; j < i; j++) {
        const train_dataset_config *b = &t->tasks[j].tc->eval_dataset;
        if (t->tasks[j].has_eval && a->kind == b->kind && a->limit == b->limit &&
            !strcmp(a->path, b->path) && !strcmp(a->split, b->split))
            return j;
    }
    return i;
}

/* Evaluates the current weights (snapshot OUTPUT_DIR/TRAIN_EVAL_DIR) on each task's
 * eval_dataset with eval_run (once per distinct data set), logging the task's own section. */
static tl_status evaluate(trainer *t, tl_error *err) {
    int any = 0;
    for (size_t i = 0; i < t->n_tasks; i++) any |= t->tasks[i].has_eval;
    if (!any) return TL_OK;
    tl_model *m = NULL;
    char *dir = path_join(t->out_dir, TRAIN_EVAL_DIR);
    tl_model_opts mo = {(int)t->cfg->threads, NULL, 0, 0};
    eval_options eo;
    eval_default_options(&eo);
    eo.batch_size = (int)t->cfg->eval.batch_size;
    eval_report *reports = calloc(t->n_tasks, sizeof *reports);
    tl_status st = dir && reports ? write_checkpoint_dir(t, TRAIN_EVAL_DIR, 0, err)
                                  : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!st) st = tl_model_open(&m, dir, &mo, err);
    for (size_t i = 0; i < t->n_tasks && !st; i++) {
        if (!t->tasks[i].has_eval) continue;
        size_t j = same_eval_data(t, i);
        if (j == i) st = eval_run(m, &t->tasks[i].eval_ds, &eo, &reports[i], err);
        if (!st) st = log_eval(t, t->tasks[i].tc->task, &reports[j], err);
    }
    if (st) tl_error_prefix(err, "evaluation at step %lld: ", (long long)t->step);
    tl_model_close(m);
    free(dir), free(reports);
    return st;
}

static tl_status trainer_loop(trainer *t, const train_run_options *opt, tl_error *err) {
    int64_t last = t->cfg->steps, every = t->cfg->output.checkpoint_interval;
    int64_t eval_every = t->cfg->eval.interval;
    if (opt->stop_step > 0 && opt->stop_step < last) last = opt->stop_step;
    progress p = {0};
    double t0 = progress_now();
    if (opt->progress) progress_start(&p, opt->progress, t->cfg->steps, t->step, t0);
    p.first_step = t->step;
    tl_status st = TL_OK;
    while (t->step < last && !st) {
        task_state *ts = NULL;
        double loss = NAN;
        st = train_one_step(t, &ts, &loss, err);
        if (!st) st = log_step(t, &p, ts, loss, t0, err);
        if (!st && every > 0 && t->step % every == 0) {
            if (t->step < last) st = write_checkpoint(t, err);
            if (!st) st = refresh_features(t, err);
        }
        if (!st && ((eval_every > 0 && t->step % eval_every == 0) || t->step == t->cfg->steps))
            st = evaluate(t, err);
    }
    if (opt->progress) progress_finish(&p, progress_now());
    return st ? st : write_checkpoint(t, err);
}

static tl_status run_one(const train_config *cfg, const char *out_dir,
                         const train_task_config *tasks, size_t n_tasks,
                         const train_run_options *opt, tl_error *err) {
    trainer t;
    tl_status st = trainer_open(&t, cfg, out_dir, tasks, n_tasks, opt->resume, err);
    if (!st) st = trainer_loop(&t, opt, err);
    trainer_close(&t);
    return st;
}

tl_status train_run(const train_config *cfg, const train_run_options *opt, tl_error *err) {
    if (cfg->mode != TRAIN_MODE_TEACHERS)
        return run_one(cfg, cfg->output.dir, cfg->tasks, cfg->n_tasks, opt, err);
    if (mkdir(cfg->output.dir, 0755) != 0 && errno != EEXIST)
        return tl_fail(err, TL_ERR_IO, "output.dir %s: %s", cfg->output.dir, strerror(errno));
    tl_status st = TL_OK;
    for (size_t i = 0; i < cfg->n_tasks && !st; i++) {
        char name[64];
        snprintf(name, sizeof name, "teacher-%s", TRAIN_TASK_NAMES[cfg->tasks[i].task]);
        char *dir = path_join(cfg->output.dir, name);
        st = dir ? run_one(cfg, dir, &cfg->tasks[i], 1, opt, err)
                 : tl_fail(err, TL_ERR_NOMEM, "out of memory");
        free(dir);
    }
    return st;
}
