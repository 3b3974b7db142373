/* Benchmarks the CLIP engine through the public header: image embeddings at batch 1 and 8,
 * text embeddings of 10 and 77 tokens, and a large cblas_sgemm in the same run to say what
 * fraction of the machine's matmul rate the vision tower reaches. Not a test: it asserts
 * nothing about speed, and tests/bench/run_clip_bench.sh runs it beside the PyTorch baseline. */
#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tailor_model.h"

#define SOT_TOKEN   49406
#define EOT_TOKEN   49407
#define MAX_REPEATS 100

typedef struct bench_opts {
    const char *model_dir, *json_path;
    int threads, repeats, sgemm_size;
} bench_opts;

/* One timed workload: run(ctx) returns 0 on success. */
typedef struct workload {
    const char *name;
    int items; /* images or texts per call */
    int (*run)(void *ctx);
    void *ctx;
} workload;

typedef struct measurement {
    const char *name;
    int items;
    double median_s, min_s;
} measurement;

/* One warm-up call, then `repeats` timed calls; returns -1 in median_s on failure. */
static measurement measure(const workload *w, int repeats) {
    measurement m = {w->name, w->items, -1, -1};
    double times[MAX_REPEATS];
    if (w->run(w->ctx) != 0) return m;
    for (int i = 0; i < repeats; i++) {
        double start = bench_seconds(CLOCK_MONOTONIC);
        if (w->run(w->ctx) != 0) return m;
        times[i] = bench_seconds(CLOCK_MONOTONIC) - start;
    }
    bench_sort_times(times, repeats);
    m.median_s =
        repeats % 2 ? times[repeats / 2] : 0.5 * (times[repeats / 2 - 1] + times[repeats / 2]);
    m.min_s = times[0];
    return m;
}

/* ---- workloads ---- */

typedef struct encode_ctx {
    tl_model *model;
    int n, stride;
    float *pixels, *embeds;
    int32_t *ids;
} encode_ctx;

static int run_images(void *p) {
    encode_ctx *c = p;
    tl_error err = {0};
    if (tl_encode_pixels(c->model, c->pixels, c->n, NULL, c->embeds, &err) == TL_OK) return 0;
    fprintf(stderr, "bench_clip: tl_encode_pixels: %s\n", err.message);
    return 1;
}

static int run_texts(void *p) {
    encode_ctx *c = p;
    tl_error err = {0};
    if (tl_encode_text_ids(c->model, c->ids, c->stride, c->n, NULL, c->embeds, &err) == TL_OK)
        return 0;
    fprintf(stderr, "bench_clip: tl_encode_text_ids: %s\n", err.message);
    return 1;
}

typedef struct sgemm_ctx {
    int n;
    float *a, *b, *c;
} sgemm_ctx;

static int run_sgemm(void *p) {
    sgemm_ctx *s = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->n, s->n, s->n, 1.0f, s->a, s->n, s->b,
                s->n, 0.0f, s->c, s->n);
    return 0;
}

/* Rows of `tokens` ids each: SOT, random ordinary ids, EOT. */
static int32_t *make_token_rows(int rows, int tokens, int vocab) {
    int32_t *ids = malloc((size_t)rows * (size_t)tokens * sizeof *ids);
    uint32_t seed = 12345;
    for (int r = 0; ids && r < rows; r++) {
        for (int t = 0; t < tokens; t++) {
            seed = seed * 1664525u + 1013904223u;
            ids[r * tokens + t] = (int32_t)((seed >> 8) % (uint32_t)(vocab - 2));
        }
        ids[r * tokens] = SOT_TOKEN;
        ids[r * tokens + tokens - 1] = EOT_TOKEN;
    }
    return ids;
}

/* ---- model arithmetic ---- */

typedef struct vision_shape {
    int patch, mlp; /* read from config.json: tl_model_info lacks them */
} vision_shape;

static int read_vision_shape(const char *dir, vision_shape *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    json_t *vc = json_object_get(root, "vision_config");
    out->patch = (int)json_integer_value(json_object_get(vc, "patch_size"));
    out->mlp = (int)json_integer_value(json_object_get(vc, "intermediate_size"));
    json_decref(root);
    if (out->patch > 0 && out->mlp > 0) return 0;
    fprintf(stderr, "bench_clip: %s lacks vision_config patch_size/intermediate_size\n", path);
    return 1;
}

/* Multiply-adds ×2 of one image through the vision tower and projection (35.1 GFLOP for
 * ViT-B/16): patch conv, per layer q/k/v/out, attention scores and mixing, MLP. */
static double vision_gflop(const tl_model_info *info, const vision_shape *v) {
    double grid = info->image_size / v->patch, t = grid * grid + 1, d = info->vision_width;
    double patch = grid * grid * 3.0 * v->patch * v->patch * d;
    double layer = 4 * t * d * d + 2 * t * t * d + 2 * t * d * v->mlp;
    return 2 * (patch + info->vision_layers * layer + d * info->projection_dim) / 1e9;
}

/* ---- report ---- */

static void print_table(const measurement *m, int n, double sgemm_gflops, double vit_gflop) {
    printf("%-22s %12s %12s %12s\n", "workload", "median ms", "ms / item", "items / s");
    for (int i = 0; i < n; i++) {
        if (m[i].median_s < 0) {
            printf("%-22s %12s\n", m[i].name, "FAILED");
            continue;
        }
        double per_item = m[i].median_s / m[i].items;
        printf("%-22s %12.3f %12.3f %12.2f\n", m[i].name, 1e3 * m[i].median_s, 1e3 * per_item,
               1.0 / per_item);
    }
    printf("sgemm: %.1f GFLOP/s\n", sgemm_gflops);
    for (int i = 0; i < 2; i++) {
        if (m[i].median_s < 0) continue;
        double rate = vit_gflop * m[i].items / m[i].median_s;
        printf("%s: %.1f GFLOP/s = %.0f%% of sgemm (%.2f GFLOP per image)\n", m[i].name, rate,
               100.0 * rate / sgemm_gflops, vit_gflop);
    }
}

static int write_json(const char *path, const bench_opts *o, const measurement *m, int n,
                      double sgemm_gflops, double vit_gflop) {
    json_t *rows = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(rows, json_pack("{s:s, s:i, s:f, s:f}", "name", m[i].name, "items",
                                              m[i].items, "median_s", m[i].median_s, "min_s",
                                              m[i].min_s));
    json_t *root =
        json_pack("{s:s, s:s, s:i, s:i, s:o, s:{s:i, s:f}, s:f}", "engine", "tailor", "model",
                  o->model_dir, "threads", o->threads, "repeats", o->repeats, "results", rows,
                  "sgemm", "n", o->sgemm_size, "gflops", sgemm_gflops, "vision_gflop", vit_gflop);
    int rc = strcmp(path, "-") == 0 ? json_dumpf(root, stdout, JSON_INDENT(2))
                                    : json_dump_file(root, path, JSON_INDENT(2));
    if (strcmp(path, "-") == 0) printf("\n");
    json_decref(root);
    return rc != 0;
}

/* ---- main ---- */

static void usage(FILE *out) {
    fprintf(out, "usage: bench_clip MODEL_DIR [--threads N] [--repeats N] [--sgemm-size N]\n"
                 "                  [--json FILE|-]\n"
                 "Times image embedding (batch 1 and 8), text embedding (10 and 77 tokens)\n"
                 "and an N x N x N cblas_sgemm (default 2048); reports the vision tower's rate\n"
                 "as a fraction of the sgemm rate. Medians of N repeats after one warm-up.\n"
                 "  --threads N   engine and BLAS threads (default 2)\n"
                 "  --repeats N   timed calls per workload (default 5, at most 100)\n");
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    static const struct option options[] = {{"threads", required_argument, 0, 't'},
                                            {"repeats", required_argument, 0, 'r'},
                                            {"sgemm-size", required_argument, 0, 's'},
                                            {"json", required_argument, 0, 'j'},
                                            {"help", no_argument, 0, 'h'},
                                            {"version", no_argument, 0, 'V'},
                                            {0, 0, 0, 0}};
    *o = (bench_opts){NULL, NULL, 2, 5, 2048};
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
            case 't':
                o->threads = atoi(optarg);
                break;
            case 'r':
                o->repeats = atoi(optarg);
                break;
            case 's':
                o->sgemm_size = atoi(optarg);
                break;
            case 'j':
                o->json_path = optarg;
                break;
            case 'h':
                usage(stdout);
                exit(0);
            case 'V':
                printf("bench_clip %s\n", TAILOR_VERSION);
                exit(0);
            default:
                return 1;
        }
    }
    if (optind != argc - 1 || o->threads < 1 || o->repeats < 1 || o->repeats > MAX_REPEATS ||
        o->sgemm_size < 1)
        return 1;
    o->model_dir = argv[optind];
    return 0;
}

static double sgemm_rate(const bench_opts *o) {
    size_t nn = (size_t)o->sgemm_size * (size_t)o->sgemm_size;
    sgemm_ctx s = {o->sgemm_size, malloc(nn * 4), malloc(nn * 4), malloc(nn * 4)};
    bench_fill_uniform(s.a, nn, 1, 1.0f);
    bench_fill_uniform(s.b, nn, 2, 1.0f);
    openblas_set_num_threads(o->threads);
    workload w = {"sgemm", 1, run_sgemm, &s};
    measurement m = measure(&w, o->repeats);
    free(s.a), free(s.b), free(s.c);
    return 2.0 * o->sgemm_size * (double)nn / m.median_s / 1e9;
}

int main(int argc, char **argv) {
    bench_opts o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    tl_model *model = NULL;
    tl_error err = {0};
    tl_model_opts mo = {.n_threads = o.threads, .backend = "cpu"};
    if (tl_model_open(&model, o.model_dir, &mo, &err) != TL_OK) {
        fprintf(stderr, "bench_clip: %s\n", err.message);
        return 1;
    }
    const tl_model_info *info = tl_model_get_info(model);
    vision_shape vs;
    if (read_vision_shape(o.model_dir, &vs)) return 1;
    size_t image_floats = 3 * (size_t)info->image_size * (size_t)info->image_size;
    float *pixels = malloc(8 * image_floats * sizeof *pixels);
    float *embeds = malloc(8 * (size_t)info->projection_dim * sizeof *embeds);
    bench_fill_uniform(pixels, 8 * image_floats, 3, 1.0f);
    int32_t *ids10 = make_token_rows(1, 10, info->vocab_size);
    int32_t *ids77 = make_token_rows(1, info->context_length, info->vocab_size);
    encode_ctx img1 = {model, 1, 0, pixels, embeds, NULL},
               img8 = {model, 8, 0, pixels, embeds, NULL};
    encode_ctx txt10 = {model, 1, 10, NULL, embeds, ids10};
    encode_ctx txt77 = {model, 1, info->context_length, NULL, embeds, ids77};
    workload work[] = {{"image batch 1", 1, run_images, &img1},
                       {"image batch 8", 8, run_images, &img8},
                       {"text 10 tokens", 1, run_texts, &txt10},
                       {"text 77 tokens", 1, run_texts, &txt77}};
    enum { N_WORK = sizeof work / sizeof work[0] };
    measurement results[N_WORK];
    int failed = 0;
    for (int i = 0; i < N_WORK; i++) {
        results[i] = measure(&work[i], o.repeats);
        failed |= results[i].median_s < 0;
    }
    double sgemm_gflops = sgemm_rate(&o), vit = vision_gflop(info, &vs);
    printf("tailor engine, %s, %d threads, median of %d\n", o.model_dir, o.threads, o.repeats);
    print_table(results, N_WORK, sgemm_gflops, vit);
    if (o.json_path) failed |= write_json(o.json_path, &o, results, N_WORK, sgemm_gflops, vit);
    free(pixels), free(embeds), free(ids10), free(ids77);
    tl_model_close(model);
    return failed;
}
