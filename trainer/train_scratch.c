/* A fresh CLIP checkpoint for training from scratch: config.json from the configured sizes and
 * HF-style random weights. Not for: the FAME-ViL parts or checkpoints of a run. */
#include "train_scratch.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "safetensors.h"

enum { MAX_SCRATCH_TENSORS = 64 + 2 * 16 * 256 };

typedef struct scratch {
    st_tensor t[MAX_SCRATCH_TENSORS];
    char *names[MAX_SCRATCH_TENSORS];
    size_t n;
    tl_rng rng;
    int failed;
} scratch;

static double normal(tl_rng *rng) {
    double u1 = ((double)(rng_next_u64(rng) >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double u2 = (double)(rng_next_u64(rng) >> 11) * 0x1p-53;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* Adds tensor name of shape dims[0..ndim): std > 0 normal(0, std), else every value = -std. */
static void add(scratch *s, const char *name, double std, int ndim, const int64_t *dims) {
    if (s->failed || s->n == MAX_SCRATCH_TENSORS) {
        s->failed = 1;
        return;
    }
    size_t numel = 1;
    st_tensor *t = &s->t[s->n];
    *t = (st_tensor){.dtype = ST_F32, .ndim = ndim};
    for (int i = 0; i < ndim; i++) numel *= (size_t)(t->shape[i] = dims[i]);
    float *x = malloc(numel * sizeof *x);
    s->names[s->n] = strdup(name);
    if (!x || !s->names[s->n]) {
        free(x), free(s->names[s->n]), s->failed = 1;
        return;
    }
    for (size_t i = 0; i < numel; i++)
        x[i] = std > 0 ? (float)(std * normal(&s->rng)) : (float)-std;
    t->name = s->names[s->n], t->data = x, t->nbytes = numel * sizeof *x;
    s->n++;
}

#define DIMS(...)                                                                                  \
    (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]) {                            \
        __VA_ARGS__                                                                                \
    }

static void add_linear(scratch *s, const char *prefix, int64_t out, int64_t in, double std) {
    char name[176];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(s, name, std, DIMS(out, in));
    snprintf(name, sizeof name, "%s.bias", prefix);
    add(s, name, 0, DIMS(out));
}

static void add_norm(scratch *s, const char *prefix, int64_t D) {
    char name[176];
    snprintf(name, sizeof name, "%s.weight", prefix);
    add(s, name, -1, DIMS(D));
    snprintf(name, sizeof name, "%s.bias", prefix);
    add(s, name, 0, DIMS(D));
}

/* One tower's encoder layers with HF's standard deviations. */
static void add_encoder(scratch *s, const char *tower, const train_tower_config *c) {
    double D = (double)c->width, in_std = pow(D, -0.5) * pow(2.0 * (double)c->layers, -0.5);
    static const char *const attn[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int64_t l = 0; l < c->layers; l++) {
        char p[160];
        for (int k = 0; k < 4; k++) {
            snprintf(p, sizeof p, "%s.encoder.layers.%lld.self_attn.%s", tower, (long long)l,
                     attn[k]);
            add_linear(s, p, c->width, c->width, k == 3 ? pow(D, -0.5) : in_std);
        }
        snprintf(p, sizeof p, "%s.encoder.layers.%lld.layer_norm1", tower, (long long)l);
        add_norm(s, p, c->width);
        snprintf(p, sizeof p, "%s.encoder.layers.%lld.mlp.fc1", tower, (long long)l);
        add_linear(s, p, c->mlp, c->width, pow(2 * D, -0.5));
        snprintf(p, sizeof p, "%s.encoder.layers.%lld.mlp.fc2", tower, (long long)l);
        add_linear(s, p, c->width, c->mlp, in_std);
        snprintf(p, sizeof p, "%s.encoder.layers.%lld.layer_norm2", tower, (long long)l);
        add_norm(s, p, c->width);
    }
}

static void add_clip(scratch *s, const train_config *cfg, int vocab) {
    int64_t Dv = cfg->model.vision.width, Dt = cfg->model.text.width, P = cfg->model.projection;
    int64_t p = cfg->model.patch, grid = cfg->model.image_size / p;
    add(s, "vision_model.embeddings.class_embedding", pow((double)Dv, -0.5), DIMS(Dv));
    add(s, "vision_model.embeddings.patch_embedding.weight", 0.02, DIMS(Dv, 3, p, p));
    add(s, "vision_model.embeddings.position_embedding.weight", 0.02, DIMS(grid * grid + 1, Dv));
    add_norm(s, "vision_model.pre_layrnorm", Dv);
    add_encoder(s, "vision_model", &cfg->model.vision);
    add_norm(s, "vision_model.post_layernorm", Dv);
    add(s, "visual_projection.weight", pow((double)Dv, -0.5), DIMS(P, Dv));
    add(s, "text_model.embeddings.token_embedding.weight", 0.02, DIMS(vocab, Dt));
    add(s, "text_model.embeddings.position_embedding.weight", 0.02, DIMS(cfg->model.context, Dt));
    add_encoder(s, "text_model", &cfg->model.text);
    add_norm(s, "text_model.final_layer_norm", Dt);
    add(s, "text_projection.weight", pow((double)Dt, -0.5), DIMS(P, Dt));
    add(s, "logit_scale", -2.6592, 0, NULL);
}

static json_t *tower_json(const train_tower_config *c) {
    return json_pack("{s:I, s:I, s:I, s:I, s:s, s:f}", "hidden_size", (json_int_t)c->width,
                     "intermediate_size", (json_int_t)c->mlp, "num_hidden_layers",
                     (json_int_t)c->layers, "num_attention_heads", (json_int_t)c->heads,
                     "hidden_act", "quick_gelu", "layer_norm_eps", 1e-5);
}

static json_t *config_json(const train_config *cfg, int vocab) {
    json_t *text = tower_json(&cfg->model.text), *vision = tower_json(&cfg->model.vision);
    json_t *root = json_pack("{s:[s], s:s, s:I, s:f}", "architectures", "CLIPModel", "model_type",
                             "clip", "projection_dim", (json_int_t)cfg->model.projection,
                             "logit_scale_init_value", 2.6592);
    if (!text || !vision || !root) {
        json_decref(text), json_decref(vision), json_decref(root);
        return NULL;
    }
    json_object_set_new(text, "vocab_size", json_integer(vocab));
    json_object_set_new(text, "max_position_embeddings", json_integer(cfg->model.context));
    json_object_set_new(text, "bos_token_id", json_integer(vocab - 2));
    json_object_set_new(text, "eos_token_id", json_integer(vocab - 1));
    json_object_set_new(vision, "image_size", json_integer(cfg->model.image_size));
    json_object_set_new(vision, "patch_size", json_integer(cfg->model.patch));
    json_object_set_new(vision, "num_channels", json_integer(3));
    json_object_set_new(root, "text_config", text);
    json_object_set_new(root, "vision_config", vision);
    return root;
}

tl_status train_scratch_write(const train_config *cfg, int vocab, const char *dir, tl_error *err) {
    char path[4096];
    json_t *root = config_json(cfg, vocab);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!root || json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS)) {
        json_decref(root);
        return tl_fail(err, TL_ERR_IO, "%s: cannot write", path);
    }
    json_decref(root);
    scratch *s = calloc(1, sizeof *s);
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "out of memory for the initial weights");
    rng_seed(&s->rng, (uint64_t)cfg->seed, UINT64_C(3) << 40);
    add_clip(s, cfg, vocab);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tl_status st = s->failed ? tl_fail(err, TL_ERR_NOMEM, "out of memory for the initial weights")
                             : st_write(path, s->t, s->n, NULL, err);
    for (size_t i = 0; i < s->n; i++) free((void *)s->t[i].data), free(s->names[i]);
    free(s);
    return st;
}
