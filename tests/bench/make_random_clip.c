/* Writes a CLIP checkpoint directory (HF config.json + model.safetensors) with random F32
 * weights of a preset size, optionally with FAME-ViL adapters, heads and CM-NTM (MODEL.md §5),
 * for benchmarks. Not for: correctness tests, which use the stored vectors in testdata. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"
#include "tailor_model.h"
#include "test_util.h"

typedef struct tower_dims {
    int width, layers, heads, mlp;
} tower_dims;

typedef struct clip_preset {
    const char *name;
    tower_dims vision, text;
    int patch, image, context, vocab, projection;
} clip_preset;

static const clip_preset presets[] = {
    {"vit-b16", {768, 12, 12, 3072}, {512, 12, 8, 2048}, 16, 224, 77, 49408, 512},
    {"tiny", {64, 2, 4, 256}, {64, 2, 4, 256}, 16, 64, 77, 49408, 32},
};

static const char *const task_names[] = {"xmr", "tgir", "scr", "fic"};
static const char *const scr_labels[] = {"dresses", "jackets",  "jeans",    "shirts", "shoes",
                                         "skirts",  "sweaters", "t-shirts", "tops",   "trousers"};
#define N_TASKS      4
#define N_SCR_LABELS 10
#define NTM_BLOCKS   8
#define NTM_SLOTS    8

/* Random initialisation (README §1 layout, 0.02 scale so ViT-B/16 activations stay sane):
 * every tensor is mean + std · N(0, 1). */
#define INIT_STD 0.02f

typedef struct tensor_spec {
    char name[160];
    int ndim;
    int64_t shape[4];
    float mean, std;
} tensor_spec;

typedef struct spec_list {
    tensor_spec *items;
    size_t count, capacity;
} spec_list;

/* ---- deterministic normal RNG: splitmix64-seeded xoshiro256**, Box-Muller ---- */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s, result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t, s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in (0, 1]. */
static double rng_uniform(rng *r) {
    return ((rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

/* Fills out[0..n) with mean + std · N(0, 1). */
static void fill_normal(rng *r, float *out, int64_t n, float mean, float std) {
    for (int64_t i = 0; i < n; i += 2) {
        double radius = sqrt(-2.0 * log(rng_uniform(r))), angle = 2.0 * M_PI * rng_uniform(r);
        out[i] = mean + std * (float)(radius * cos(angle));
        if (i + 1 < n) out[i + 1] = mean + std * (float)(radius * sin(angle));
    }
}

/* ---- the tensor list ---- */

static void add_tensor(spec_list *l, float mean, float std, int ndim, const int64_t *shape,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add_tensor(spec_list *l, float mean, float std, int ndim, const int64_t *shape,
                       const char *fmt, ...) {
    if (l->count == l->capacity) {
        l->capacity = l->capacity ? 2 * l->capacity : 256;
        l->items = realloc(l->items, l->capacity * sizeof *l->items);
        if (!l->items) {
            fprintf(stderr, "make_random_clip: out of memory\n");
            exit(1);
        }
    }
    tensor_spec *t = &l->items[l->count++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    if (ndim > 0) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->mean = mean;
    t->std = std;
}

static void add_vector(spec_list *l, const char *prefix, const char *suffix, int64_t n,
                       float mean) {
    add_tensor(l, mean, INIT_STD, 1, (int64_t[]){n}, "%s%s", prefix, suffix);
}

/* prefix.weight [out, in] and, when bias, prefix.bias [out]. */
static void add_linear(spec_list *l, const char *prefix, int64_t out, int64_t in, int bias) {
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){out, in}, "%s.weight", prefix);
    if (bias) add_vector(l, prefix, ".bias", out, 0);
}

static void add_layernorm(spec_list *l, const char *prefix, int64_t width) {
    add_vector(l, prefix, ".weight", width, 1);
    add_vector(l, prefix, ".bias", width, 0);
}

static void add_encoder_layer(spec_list *l, const char *tower, int layer, const tower_dims *d) {
    static const char *const projections[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    char prefix[128];
    for (int i = 0; i < 4; i++) {
        snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.self_attn.%s", tower, layer,
                 projections[i]);
        add_linear(l, prefix, d->width, d->width, 1);
    }
    snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.layer_norm1", tower, layer);
    add_layernorm(l, prefix, d->width);
    snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.layer_norm2", tower, layer);
    add_layernorm(l, prefix, d->width);
    snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.mlp.fc1", tower, layer);
    add_linear(l, prefix, d->mlp, d->width, 1);
    snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.mlp.fc2", tower, layer);
    add_linear(l, prefix, d->width, d->mlp, 1);
}

static void add_clip_tensors(spec_list *l, const clip_preset *p) {
    int64_t dv = p->vision.width, dt = p->text.width, grid = p->image / p->patch;
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){p->vocab, dt},
               "text_model.embeddings.token_embedding.weight");
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){p->context, dt},
               "text_model.embeddings.position_embedding.weight");
    for (int i = 0; i < p->text.layers; i++) add_encoder_layer(l, "text_model", i, &p->text);
    add_layernorm(l, "text_model.final_layer_norm", dt);
    add_vector(l, "vision_model.embeddings.class_embedding", "", dv, 0);
    add_tensor(l, 0, INIT_STD, 4, (int64_t[]){dv, 3, p->patch, p->patch},
               "vision_model.embeddings.patch_embedding.weight");
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){grid * grid + 1, dv},
               "vision_model.embeddings.position_embedding.weight");
    add_layernorm(l, "vision_model.pre_layrnorm", dv);
    for (int i = 0; i < p->vision.layers; i++) add_encoder_layer(l, "vision_model", i, &p->vision);
    add_layernorm(l, "vision_model.post_layernorm", dv);
    add_linear(l, "visual_projection", p->projection, dv, 0);
    add_linear(l, "text_projection", p->projection, dt, 0);
    add_tensor(l, logf(100.0f), 0, 0, NULL, "logit_scale");
}

/* An adapter of width d and bottleneck r under prefix (MODEL.md §2); scale 1. */
static void add_adapter(spec_list *l, const char *prefix, int64_t d, int64_t r) {
    char name[160];
    snprintf(name, sizeof name, "%s.ln", prefix);
    add_layernorm(l, name, d);
    snprintf(name, sizeof name, "%s.down", prefix);
    add_linear(l, name, r, d, 1);
    snprintf(name, sizeof name, "%s.up", prefix);
    add_linear(l, name, d, r, 1);
    add_tensor(l, 1, 0, 1, (int64_t[]){1}, "%s.scale", prefix);
}

/* TSA per task and XAA for one layer of a tower of width dq reading a stream of width dc. */
static void add_layer_adapters(spec_list *l, const char *tower, int layer, int64_t dq, int64_t dc,
                               int64_t r) {
    char prefix[160];
    for (int t = 0; t < N_TASKS; t++) {
        snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.tsa.%s", tower, layer, task_names[t]);
        add_adapter(l, prefix, dq, r);
    }
    snprintf(prefix, sizeof prefix, "%s.encoder.layers.%d.xaa", tower, layer);
    char name[200];
    snprintf(name, sizeof name, "%s.ln_q", prefix);
    add_layernorm(l, name, dq);
    snprintf(name, sizeof name, "%s.ln_kv", prefix);
    add_layernorm(l, name, dc);
    snprintf(name, sizeof name, "%s.q", prefix);
    add_linear(l, name, dq, dq, 1);
    snprintf(name, sizeof name, "%s.k", prefix);
    add_linear(l, name, dq, dc, 1);
    snprintf(name, sizeof name, "%s.v", prefix);
    add_linear(l, name, dq, dc, 1);
    snprintf(name, sizeof name, "%s.adapter", prefix);
    add_adapter(l, name, dq, r);
}

static void add_ntm_block(spec_list *l, int block, int64_t in, int64_t p) {
    int64_t w = p, h = p; /* MODEL.md §3: W = P, H = P */
    char prefix[160];
    snprintf(prefix, sizeof prefix, "ntm.blocks.%d.lstm", block);
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){4 * h, in + w}, "%s.weight_ih", prefix);
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){4 * h, h}, "%s.weight_hh", prefix);
    add_vector(l, prefix, ".bias_ih", 4 * h, 0);
    add_vector(l, prefix, ".bias_hh", 4 * h, 0);
    snprintf(prefix, sizeof prefix, "ntm.blocks.%d.read", block);
    add_linear(l, prefix, w + 6, h, 1);
    snprintf(prefix, sizeof prefix, "ntm.blocks.%d.write", block);
    add_linear(l, prefix, 3 * w + 6, h, 1);
    snprintf(prefix, sizeof prefix, "ntm.blocks.%d.out", block);
    add_linear(l, prefix, p, h + w, 1);
    add_tensor(l, 0, INIT_STD, 2, (int64_t[]){NTM_SLOTS, w}, "ntm.blocks.%d.mem_init", block);
    add_tensor(l, 0, INIT_STD, 1, (int64_t[]){w}, "ntm.blocks.%d.read_init", block);
}

static void add_tailor_tensors(spec_list *l, const clip_preset *p, int64_t r) {
    for (int i = 0; i < p->vision.layers; i++)
        add_layer_adapters(l, "vision_model", i, p->vision.width, p->text.width, r);
    for (int i = 0; i < p->text.layers; i++)
        add_layer_adapters(l, "text_model", i, p->text.width, p->vision.width, r);
    add_tensor(l, 4, 0, 1, (int64_t[]){1}, "heads.xmr.scale");
    add_tensor(l, 4, 0, 1, (int64_t[]){1}, "heads.tgir.scale");
    add_linear(l, "heads.scr", N_SCR_LABELS, p->projection, 1);
    add_linear(l, "heads.fic", p->vocab, p->text.width, 1);
    for (int c = 0; c < NTM_BLOCKS; c++)
        add_ntm_block(l, c, c == 0 ? p->projection : 2 * p->projection, p->projection);
    add_tensor(l, 4, 0, 1, (int64_t[]){1}, "ntm.scale");
}

/* ---- output ---- */

static json_t *tower_config(const clip_preset *p, int vision) {
    const tower_dims *d = vision ? &p->vision : &p->text;
    json_t *c = json_pack("{s:s}", "model_type", vision ? "clip_vision_model" : "clip_text_model");
    if (!vision) json_object_set_new(c, "vocab_size", json_integer(p->vocab));
    json_object_set_new(c, "hidden_size", json_integer(d->width));
    json_object_set_new(c, "intermediate_size", json_integer(d->mlp));
    json_object_set_new(c, "projection_dim", json_integer(p->projection));
    json_object_set_new(c, "num_hidden_layers", json_integer(d->layers));
    json_object_set_new(c, "num_attention_heads", json_integer(d->heads));
    if (vision) {
        json_object_set_new(c, "num_channels", json_integer(3));
        json_object_set_new(c, "image_size", json_integer(p->image));
        json_object_set_new(c, "patch_size", json_integer(p->patch));
    } else {
        json_object_set_new(c, "max_position_embeddings", json_integer(p->context));
    }
    json_object_update_new(c,
                           json_pack("{s:s, s:f, s:f, s:f, s:f, s:f}", "hidden_act", "quick_gelu",
                                     "layer_norm_eps", 1e-5, "attention_dropout", 0.0, "dropout",
                                     0.0, "initializer_range", 0.02, "initializer_factor", 1.0));
    if (!vision)
        json_object_update_new(c, json_pack("{s:i, s:i, s:i}", "bos_token_id", 0, "eos_token_id", 2,
                                            "pad_token_id", 1));
    return c;
}

static json_t *tailor_config(const clip_preset *p, int r) {
    json_t *tasks = json_array(), *labels = json_array();
    for (int t = 0; t < N_TASKS; t++) json_array_append_new(tasks, json_string(task_names[t]));
    for (int i = 0; i < N_SCR_LABELS; i++)
        json_array_append_new(labels, json_string(scr_labels[i]));
    return json_pack("{s:i, s:o, s:i, s:i, s:o, s:{s:i, s:i, s:i, s:i}}", "format", 1, "tasks",
                     tasks, "adapter_dim", r, "xaa_dim", r, "scr_labels", labels, "ntm", "blocks",
                     NTM_BLOCKS, "slots", NTM_SLOTS, "width", p->projection, "hidden",
                     p->projection);
}

static int write_config(const char *path, const clip_preset *p, int adapters) {
    json_t *root =
        json_pack("{s:[s], s:s, s:f, s:f, s:i, s:s, s:o, s:o}", "architectures", "CLIPModel",
                  "model_type", "clip", "initializer_factor", 1.0, "logit_scale_init_value", 2.6592,
                  "projection_dim", p->projection, "torch_dtype", "float32", "text_config",
                  tower_config(p, 0), "vision_config", tower_config(p, 1));
    if (adapters) json_object_set_new(root, "tailor", tailor_config(p, adapters));
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (rc != 0) fprintf(stderr, "make_random_clip: cannot write %s\n", path);
    return rc;
}

/* Draws every tensor's values into one arena and writes model.safetensors atomically. */
static int write_weights(const char *path, const spec_list *l, uint64_t seed) {
    st_tensor *tensors = calloc(l->count + 1, sizeof *tensors);
    if (!tensors) {
        fprintf(stderr, "make_random_clip: out of memory for %zu tensors\n", l->count);
        return 1;
    }
    int64_t total = 0;
    for (size_t i = 0; i < l->count; i++) {
        st_tensor *t = &tensors[i];
        t->name = l->items[i].name;
        t->dtype = ST_F32;
        t->ndim = l->items[i].ndim;
        memcpy(t->shape, l->items[i].shape, sizeof l->items[i].shape);
        t->nbytes = (size_t)st_numel(t) * sizeof(float);
        total += st_numel(t);
    }
    float *arena = malloc((size_t)total * sizeof *arena);
    if (!arena) {
        fprintf(stderr, "make_random_clip: out of memory for %lld floats\n", (long long)total);
        free(tensors);
        return 1;
    }
    rng r;
    rng_seed(&r, seed);
    float *next = arena;
    for (size_t i = 0; i < l->count; i++) {
        tensors[i].data = next;
        fill_normal(&r, next, st_numel(&tensors[i]), l->items[i].mean, l->items[i].std);
        next += st_numel(&tensors[i]);
    }
    tl_error err = {0};
    tl_status s = st_write(path, tensors, l->count, "{\"format\": \"pt\"}", &err);
    if (s)
        fprintf(stderr, "make_random_clip: %s\n", err.message);
    else
        printf("%s: %zu tensors, %.1f M parameters\n", path, l->count, (double)total / 1e6);
    free(arena);
    free(tensors);
    return s != TL_OK;
}

static int copy_vocab(const char *vocab_dir, const char *outdir) {
    static const char *const names[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", vocab_dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", outdir, names[i]);
        if (tu_copy_file(from, to)) {
            fprintf(stderr, "make_random_clip: cannot copy %s to %s\n", from, to);
            return 1;
        }
    }
    return 0;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: make_random_clip OUTDIR [--preset vit-b16|tiny] [--seed N] [--adapters R]\n"
            "                        [--vocab DIR]\n"
            "Writes OUTDIR/config.json (HF CLIPConfig) and OUTDIR/model.safetensors with random\n"
            "F32 weights, for benchmarks.\n"
            "  --preset NAME   vit-b16 (openai/clip-vit-base-patch16 sizes, default) or tiny\n"
            "  --seed N        RNG seed (default 1)\n"
            "  --adapters R    add FAME-ViL TSA/XAA adapters of bottleneck R, heads and CM-NTM\n"
            "                  (MODEL.md section 5) and a \"tailor\" config object\n"
            "  --vocab DIR     copy DIR/vocab.json and DIR/merges.txt into OUTDIR\n"
            "  --help, --version\n");
}

static const clip_preset *find_preset(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

int main(int argc, char **argv) {
    static const struct option options[] = {{"preset", required_argument, 0, 'p'},
                                            {"seed", required_argument, 0, 's'},
                                            {"adapters", required_argument, 0, 'a'},
                                            {"vocab", required_argument, 0, 'v'},
                                            {"help", no_argument, 0, 'h'},
                                            {"version", no_argument, 0, 'V'},
                                            {0, 0, 0, 0}};
    const clip_preset *preset = &presets[0];
    uint64_t seed = 1;
    int adapters = 0, opt;
    const char *vocab_dir = NULL;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 'p':
                if (!(preset = find_preset(optarg))) {
                    fprintf(stderr, "make_random_clip: unknown preset '%s'\n", optarg);
                    return 2;
                }
                break;
            case 's':
                seed = strtoull(optarg, NULL, 10);
                break;
            case 'a':
                adapters = atoi(optarg);
                break;
            case 'v':
                vocab_dir = optarg;
                break;
            case 'h':
                usage(stdout);
                return 0;
            case 'V':
                printf("make_random_clip %s\n", TAILOR_VERSION);
                return 0;
            default:
                usage(stderr);
                return 2;
        }
    }
    if (optind != argc - 1 || adapters < 0) {
        usage(stderr);
        return 2;
    }
    const char *outdir = argv[optind];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_random_clip: cannot create %s: %s\n", outdir, strerror(errno));
        return 1;
    }
    spec_list specs = {0};
    add_clip_tensors(&specs, preset);
    if (adapters) add_tailor_tensors(&specs, preset, adapters);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", outdir);
    int rc = write_config(path, preset, adapters);
    snprintf(path, sizeof path, "%s/model.safetensors", outdir);
    if (!rc) rc = write_weights(path, &specs, seed);
    if (!rc && vocab_dir) rc = copy_vocab(vocab_dir, outdir);
    free(specs.items);
    return rc;
}
