/* Declares every tensor of the trainable model once (MODEL.md §5 names, HF names for CLIP),
 * in one parameter set per part; the same declaring code binds the (value, gradient) pointer
 * structs after allocation. Not for: forward or backward arithmetic (*_backward.c). */
#include "train_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

/* Declaring/binding context: the set being filled and a sticky status. */
typedef struct decl {
    param_set *set;
    tl_error *err;
    tl_status st;
} decl;

static void tensor(decl *d, float **p, float **g, int ndim, const int64_t *shape,
                   const char *name) {
    if (!d->st) d->st = param_set_tensor(d->set, p, g, ndim, shape, name, d->err);
}

/* buf = "prefix.suffix" (buf holds PARAM_NAME_MAX chars; a longer name is cut, and then
 * names no checkpoint tensor, so loading fails naming it). */
static const char *join(char *buf, const char *prefix, const char *suffix) {
    if (snprintf(buf, PARAM_NAME_MAX, "%s.%s", prefix, suffix) >= PARAM_NAME_MAX)
        buf[PARAM_NAME_MAX - 1] = 0;
    return buf;
}

static void linear(decl *d, tr_linear *l, int out, int in, int bias, const char *prefix) {
    char name[PARAM_NAME_MAX];
    tensor(d, &l->w, &l->dw, 2, SHAPE(out, in), join(name, prefix, "weight"));
    if (bias) tensor(d, &l->b, &l->db, 1, SHAPE(out), join(name, prefix, "bias"));
}

static void norm(decl *d, tr_norm *n, int dim, const char *prefix) {
    char name[PARAM_NAME_MAX];
    tensor(d, &n->w, &n->dw, 1, SHAPE(dim), join(name, prefix, "weight"));
    tensor(d, &n->b, &n->db, 1, SHAPE(dim), join(name, prefix, "bias"));
}

static void adapter(decl *d, tr_adapter *a, int dim, int rank, const char *prefix) {
    char name[PARAM_NAME_MAX];
    a->dim = dim, a->rank = rank;
    norm(d, &a->ln, dim, join(name, prefix, "ln"));
    linear(d, &a->down, rank, dim, 1, join(name, prefix, "down"));
    linear(d, &a->up, dim, rank, 1, join(name, prefix, "up"));
    tensor(d, &a->s, &a->ds, 1, SHAPE(1), join(name, prefix, "scale"));
}

static void xaa(decl *d, tr_xaa *x, int dq, int dc, int heads, int rank, const char *prefix) {
    char name[PARAM_NAME_MAX];
    x->dq = dq, x->dc = dc, x->heads = heads;
    norm(d, &x->ln_q, dq, join(name, prefix, "ln_q"));
    norm(d, &x->ln_kv, dc, join(name, prefix, "ln_kv"));
    linear(d, &x->q, dq, dq, 1, join(name, prefix, "q"));
    linear(d, &x->k, dq, dc, 1, join(name, prefix, "k"));
    linear(d, &x->v, dq, dc, 1, join(name, prefix, "v"));
    adapter(d, &x->adapter, dq, rank, join(name, prefix, "adapter"));
}

static void clip_layer(decl *d, tr_layer *y, const tr_tower *t, const char *prefix) {
    char name[PARAM_NAME_MAX];
    int D = t->width;
    linear(d, &y->q, D, D, 1, join(name, prefix, "self_attn.q_proj"));
    linear(d, &y->k, D, D, 1, join(name, prefix, "self_attn.k_proj"));
    linear(d, &y->v, D, D, 1, join(name, prefix, "self_attn.v_proj"));
    linear(d, &y->out, D, D, 1, join(name, prefix, "self_attn.out_proj"));
    norm(d, &y->ln1, D, join(name, prefix, "layer_norm1"));
    linear(d, &y->fc1, t->mlp, D, 1, join(name, prefix, "mlp.fc1"));
    linear(d, &y->fc2, D, t->mlp, 1, join(name, prefix, "mlp.fc2"));
    norm(d, &y->ln2, D, join(name, prefix, "layer_norm2"));
}

static void declare_clip(decl *d, train_model *m) {
    tr_vision *v = &m->vision;
    tr_text *t = &m->text;
    int Dv = v->tower.width, Dt = t->tower.width, P = m->projection_dim;
    char name[PARAM_NAME_MAX];
    tensor(d, &v->patch_embed.w, &v->patch_embed.dw, 4, SHAPE(Dv, v->channels, v->patch, v->patch),
           "vision_model.embeddings.patch_embedding.weight");
    tensor(d, &v->class_emb, &v->dclass_emb, 1, SHAPE(Dv),
           "vision_model.embeddings.class_embedding");
    tensor(d, &v->pos_emb, &v->dpos_emb, 2, SHAPE(v->tokens, Dv),
           "vision_model.embeddings.position_embedding.weight");
    norm(d, &v->pre_ln, Dv, "vision_model.pre_layrnorm");
    for (int l = 0; l < v->tower.n_layers; l++) {
        snprintf(name, sizeof name, "vision_model.encoder.layers.%d", l);
        clip_layer(d, &v->tower.layers[l], &v->tower, name);
    }
    norm(d, &v->post_ln, Dv, "vision_model.post_layernorm");
    linear(d, &v->proj, P, Dv, 0, "visual_projection");
    tensor(d, &t->tok_emb, &t->dtok_emb, 2, SHAPE(t->vocab, Dt),
           "text_model.embeddings.token_embedding.weight");
    tensor(d, &t->pos_emb, &t->dpos_emb, 2, SHAPE(t->positions, Dt),
           "text_model.embeddings.position_embedding.weight");
    for (int l = 0; l < t->tower.n_layers; l++) {
        snprintf(name, sizeof name, "text_model.encoder.layers.%d", l);
        clip_layer(d, &t->tower.layers[l], &t->tower, name);
    }
    norm(d, &t->final_ln, Dt, "text_model.final_layer_norm");
    linear(d, &t->proj, P, Dt, 0, "text_projection");
    tensor(d, &m->logit_scale, &m->dlogit_scale, 0, SHAPE(1), "logit_scale");
}

static const char *tower_prefix(const train_model *m, const tr_tower *t) {
    return t == &m->vision.tower ? "vision_model" : "text_model";
}

static void declare_tsa(decl *d, train_model *m, int task) {
    tr_tower *towers[2] = {&m->vision.tower, &m->text.tower};
    char name[PARAM_NAME_MAX];
    for (int i = 0; i < 2; i++)
        for (int l = 0; l < towers[i]->n_layers; l++) {
            snprintf(name, sizeof name, "%s.encoder.layers.%d.tsa.%s", tower_prefix(m, towers[i]),
                     l, tl_task_name(task));
            adapter(d, &towers[i]->tsa[task][l], towers[i]->width, m->adapter_dim, name);
        }
}

static void declare_xaa(decl *d, train_model *m) {
    tr_tower *towers[2] = {&m->vision.tower, &m->text.tower};
    char name[PARAM_NAME_MAX];
    for (int i = 0; i < 2; i++)
        for (int l = 0; l < towers[i]->n_layers; l++) {
            snprintf(name, sizeof name, "%s.encoder.layers.%d.xaa", tower_prefix(m, towers[i]), l);
            xaa(d, &towers[i]->xaa[l], towers[i]->width, towers[1 - i]->width, towers[i]->heads,
                m->xaa_dim, name);
        }
}

static void declare_ntm(decl *d, train_model *m) {
    tr_ntm *n = &m->ntm;
    int H = n->hidden, W = n->width, P = n->proj;
    char name[PARAM_NAME_MAX];
    for (int c = 0; c < n->blocks; c++) {
        tr_ntm_block *b = &n->block[c];
        char block[PARAM_NAME_MAX];
        snprintf(block, sizeof block, "ntm.blocks.%d", c);
        b->in_dim = c ? 2 * P : P;
        tensor(d, &b->lstm_ih.w, &b->lstm_ih.dw, 2, SHAPE(4 * H, b->in_dim + W),
               join(name, block, "lstm.weight_ih"));
        tensor(d, &b->lstm_hh.w, &b->lstm_hh.dw, 2, SHAPE(4 * H, H),
               join(name, block, "lstm.weight_hh"));
        tensor(d, &b->lstm_ih.b, &b->lstm_ih.db, 1, SHAPE(4 * H),
               join(name, block, "lstm.bias_ih"));
        tensor(d, &b->lstm_hh.b, &b->lstm_hh.db, 1, SHAPE(4 * H),
               join(name, block, "lstm.bias_hh"));
        linear(d, &b->read, W + 6, H, 1, join(name, block, "read"));
        linear(d, &b->write, 3 * W + 6, H, 1, join(name, block, "write"));
        linear(d, &b->out, P, H + W, 1, join(name, block, "out"));
        tensor(d, &b->mem_init, &b->dmem_init, 2, SHAPE(n->slots, W),
               join(name, block, "mem_init"));
        tensor(d, &b->read_init, &b->dread_init, 1, SHAPE(W), join(name, block, "read_init"));
    }
    tensor(d, &n->scale, &n->dscale, 1, SHAPE(1), "ntm.scale");
}

static void declare_part(decl *d, train_model *m, train_part part) {
    if (part == TRAIN_PART_CLIP) declare_clip(d, m);
    if (part >= TRAIN_PART_TSA_XMR && part <= TRAIN_PART_TSA_FIC)
        declare_tsa(d, m, part - TRAIN_PART_TSA_XMR);
    if (part == TRAIN_PART_XAA) declare_xaa(d, m);
    if (part == TRAIN_PART_HEAD_XMR || part == TRAIN_PART_HEAD_TGIR)
        tensor(d, &m->head_scale[part - TRAIN_PART_HEAD_XMR],
               &m->dhead_scale[part - TRAIN_PART_HEAD_XMR], 1, SHAPE(1),
               part == TRAIN_PART_HEAD_XMR ? "heads.xmr.scale" : "heads.tgir.scale");
    if (part == TRAIN_PART_HEAD_SCR)
        linear(d, &m->scr_head, m->scr_classes, m->projection_dim, 1, "heads.scr");
    if (part == TRAIN_PART_HEAD_FIC)
        linear(d, &m->fic_head, m->text.vocab, m->text.tower.width, 1, "heads.fic");
    if (part == TRAIN_PART_NTM) declare_ntm(d, m);
}

const char *train_part_name(train_part part) {
    static const char *names[TRAIN_PART_COUNT] = {"clip",     "tsa.xmr",  "tsa.tgir", "tsa.scr",
                                                  "tsa.fic",  "xaa",      "head.xmr", "head.tgir",
                                                  "head.scr", "head.fic", "ntm"};
    return part < TRAIN_PART_COUNT ? names[part] : "?";
}

/* A positive integer field of obj, or TL_ERR_FORMAT naming it. */
static tl_status positive_int(const json_t *obj, const char *key, int *out, tl_error *err) {
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1 << 24)
        return tl_fail(err, TL_ERR_FORMAT, "config.json tailor.%s: expected a positive integer",
                       key);
    *out = (int)json_integer_value(v);
    return TL_OK;
}

static tl_status read_tailor_config(train_model *m, const json_t *fallback, tl_error *err) {
    const json_t *t = m->cfg.tailor ? m->cfg.tailor : fallback;
    const json_t *ntm = json_object_get(t, "ntm");
    const json_t *labels = json_object_get(t, "scr_labels");
    if (!t) return tl_fail(err, TL_ERR_FORMAT, "config.json: no \"tailor\" object to train");
    if (!json_is_array(labels) || json_array_size(labels) == 0)
        return tl_fail(err, TL_ERR_FORMAT, "config.json tailor.scr_labels: expected a list");
    m->scr_classes = (int)json_array_size(labels);
    tl_status st = positive_int(t, "adapter_dim", &m->adapter_dim, err);
    if (!st) st = positive_int(t, "xaa_dim", &m->xaa_dim, err);
    if (!st) st = positive_int(ntm, "blocks", &m->ntm.blocks, err);
    if (!st) st = positive_int(ntm, "slots", &m->ntm.slots, err);
    if (!st) st = positive_int(ntm, "width", &m->ntm.width, err);
    if (!st) st = positive_int(ntm, "hidden", &m->ntm.hidden, err);
    if (!st && m->ntm.width != m->projection_dim)
        return tl_fail(err, TL_ERR_FORMAT, "config.json tailor.ntm.width %d != projection_dim %d",
                       m->ntm.width, m->projection_dim);
    return st;
}

static tl_status tower_init(tr_tower *t, const clip_tower_config *c, tl_error *err) {
    memset(t, 0, sizeof *t);
    t->width = c->hidden_size, t->heads = c->num_attention_heads;
    t->head_dim = t->width / t->heads, t->mlp = c->intermediate_size;
    t->n_layers = c->num_hidden_layers, t->eps = c->layer_norm_eps;
    t->layers = calloc((size_t)t->n_layers, sizeof *t->layers);
    t->xaa = calloc((size_t)t->n_layers, sizeof *t->xaa);
    int ok = t->layers && t->xaa;
    for (int k = 0; k < TL_TASK_COUNT; k++) {
        t->tsa[k] = calloc((size_t)t->n_layers, sizeof *t->tsa[k]);
        ok = ok && t->tsa[k];
    }
    return ok ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory for the layer tables");
}

static void tower_free(tr_tower *t) {
    free(t->layers);
    free(t->xaa);
    for (int k = 0; k < TL_TASK_COUNT; k++) free(t->tsa[k]);
}

static tl_status shapes_init(train_model *m, const json_t *tailor, tl_error *err) {
    const clip_config *c = &m->cfg;
    m->projection_dim = c->projection_dim;
    tr_vision *v = &m->vision;
    v->channels = c->vision.num_channels, v->image_size = c->vision.image_size;
    v->patch = c->vision.patch_size;
    int grid = v->image_size / v->patch;
    v->tokens = grid * grid + 1;
    m->text.vocab = c->text.vocab_size, m->text.positions = c->text.max_position_embeddings;
    if (c->vision.tower.num_hidden_layers != c->text.tower.num_hidden_layers)
        return tl_fail(err, TL_ERR_FORMAT, "fusion needs equal layer counts (vision %d, text %d)",
                       c->vision.tower.num_hidden_layers, c->text.tower.num_hidden_layers);
    tl_status st = read_tailor_config(m, tailor, err);
    if (!st) st = tower_init(&v->tower, &c->vision.tower, err);
    if (!st) st = tower_init(&m->text.tower, &c->text.tower, err);
    m->ntm.proj = m->projection_dim;
    m->ntm.block = st ? NULL : calloc((size_t)m->ntm.blocks, sizeof *m->ntm.block);
    if (!st && !m->ntm.block) st = tl_fail(err, TL_ERR_NOMEM, "out of memory for NTM blocks");
    return st;
}

/* Declares, allocates and binds one part, then loads it from f when f holds all of it; with
 * allow_missing, a part f holds none of stays zero and sets its bit in *missing. */
static tl_status part_load(train_model *m, train_part part, int trained, st_file *f,
                           int allow_missing, unsigned *missing, tl_error *err) {
    decl d = {&m->parts[part], err, TL_OK};
    declare_part(&d, m, part);
    if (!d.st) d.st = param_set_allocate(d.set, trained, err);
    if (!d.st) declare_part(&d, m, part);
    const char *absent = NULL;
    size_t present = d.st ? 0 : param_set_present(d.set, f, &absent);
    if (!d.st && present == 0 && allow_missing && part != TRAIN_PART_CLIP)
        *missing |= 1u << part;
    else if (!d.st && absent)
        d.st = tl_fail(err, TL_ERR_NOT_FOUND, "tensor %s is missing", absent);
    else if (!d.st)
        d.st = param_set_load(d.set, f, err);
    if (d.st) tl_error_prefix(err, "part %s", train_part_name(part));
    return d.st;
}

tl_status train_model_open(train_model *m, tl_backend *be, const char *dir,
                           const train_open_options *opt, unsigned *missing, tl_error *err) {
    memset(m, 0, sizeof *m);
    m->be = be;
    unsigned none = 0, *absent = missing ? missing : &none;
    *absent = 0;
    tl_status st = clip_config_load_dir(&m->cfg, dir, err);
    if (st) return st;
    st = shapes_init(m, opt->tailor, err);
    st_file *f = NULL;
    if (!st) st = st_open_dir(&f, dir, err);
    for (int p = 0; p < TRAIN_PART_COUNT && !st; p++)
        st = part_load(m, (train_part)p, (int)(opt->trained >> p) & 1, f, opt->allow_missing,
                       absent, err);
    if (f) st_close(f);
    if (st) train_model_free(m);
    return st;
}

tl_status train_model_load(train_model *m, tl_backend *be, const char *dir, unsigned trained,
                           tl_error *err) {
    train_open_options opt = {trained, NULL, 0};
    return train_model_open(m, be, dir, &opt, NULL, err);
}

void train_model_free(train_model *m) {
    for (int p = 0; p < TRAIN_PART_COUNT; p++) param_set_free(&m->parts[p]);
    tower_free(&m->vision.tower);
    tower_free(&m->text.tower);
    free(m->ntm.block);
    if (m->cfg.root) clip_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

tl_status train_model_save(const train_model *m, const char *path, tl_error *err) {
    size_t total = 0, n = 0;
    for (int p = 0; p < TRAIN_PART_COUNT; p++) total += m->parts[p].count;
    st_tensor *t = calloc(total ? total : 1, sizeof *t);
    if (!t) return tl_fail(err, TL_ERR_NOMEM, "checkpoint: out of memory");
    for (int p = 0; p < TRAIN_PART_COUNT; p++) param_set_describe(&m->parts[p], t, &n);
    tl_status st = st_write(path, t, n, "{\"format\": \"pt\"}", err);
    free(t);
    return st;
}

void train_model_zero_grad(train_model *m) {
    for (int p = 0; p < TRAIN_PART_COUNT; p++) param_set_zero_grad(&m->parts[p]);
}

const float *train_model_grad(const train_model *m, const char *name, size_t *numel) {
    for (int p = 0; p < TRAIN_PART_COUNT; p++) {
        const param_tensor *t = param_set_find(&m->parts[p], name);
        if (!t) continue;
        *numel = t->numel;
        return m->parts[p].grad ? m->parts[p].grad + t->offset : NULL;
    }
    return NULL;
}
