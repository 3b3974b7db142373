/* Benchmarks the FAME-ViL task paths against plain CLIP on one checkpoint with adapters
 * (make_random_clip --adapters 64): contrastive image embedding with TSA vs plain, composed
 * query (fusion mode) vs one image embedding, greedy captioning (vision pass + N tokens) vs
 * one image embedding; --decode-bf16 opens the model with bfloat16 decoding weights. Not a test:
 * it prints timings and ratios and asserts nothing. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tailor_model.h"

#define MAX_REPEATS 200

typedef struct bench {
    tl_model *m;
    const tl_model_info *info;
    float *pixels, *out;
    int32_t *ids, *caption;
    int caption_limit, caption_len;
} bench;

/* Wall time, or with cpu_time the process's CPU time (steadier on a loaded machine; with
 * --threads 1 it is the work done). */
static int cpu_time;

static double now_seconds(void) {
    return bench_seconds(cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC);
}

typedef struct timing {
    double median, min; /* seconds; -1 on failure */
} timing;

/* `repeats` calls after one warm-up. The minimum is the steadier figure on a shared machine. */
static timing time_calls(bench *b, tl_status (*run)(bench *, tl_error *), int repeats) {
    double times[MAX_REPEATS];
    timing t = {-1, -1};
    tl_error err;
    if (run(b, &err)) {
        fprintf(stderr, "bench_tasks: %s\n", err.message);
        return t;
    }
    for (int i = 0; i < repeats; i++) {
        double start = now_seconds();
        if (run(b, &err)) return t;
        times[i] = now_seconds() - start;
    }
    bench_sort_times(times, repeats);
    return (timing){times[repeats / 2], times[0]};
}

static void print_timing(const char *name, timing t, timing base, const char *base_name) {
    printf("%-28s median %8.2f ms  min %8.2f ms", name, 1e3 * t.median, 1e3 * t.min);
    if (base_name)
        printf("  (%.3fx / %.3fx %s)", t.median / base.median, t.min / base.min, base_name);
    printf("\n");
}

static tl_status run_plain_image(bench *b, tl_error *err) {
    return tl_encode_pixels(b->m, b->pixels, 1, NULL, b->out, err);
}

static tl_status run_xmr_image(bench *b, tl_error *err) {
    return tl_encode_pixels_task(b->m, TL_TASK_XMR, b->pixels, 1, b->out, err);
}

static tl_status run_compose(bench *b, tl_error *err) {
    return tl_fuse_ids(b->m, TL_TASK_TGIR, b->pixels, b->ids, b->info->context_length, 1, NULL,
                       NULL, b->out, err);
}

static tl_status run_caption(bench *b, tl_error *err) {
    tl_caption_opts opts = {.beam = 1, .max_tokens = b->caption_limit};
    return tl_caption_pixels(b->m, b->pixels, &opts, b->caption, b->caption_limit, &b->caption_len,
                             err);
}

/* Deterministic inputs: pixels in [-2, 2], a 12-token text (SOS, 10 ids, EOS). */
static int make_inputs(bench *b) {
    int S = b->info->image_size, ctx = b->info->context_length, V = b->info->vocab_size;
    b->pixels = malloc(3 * (size_t)S * S * sizeof *b->pixels);
    b->out = malloc((size_t)b->info->projection_dim * sizeof *b->out);
    b->ids = calloc((size_t)ctx, sizeof *b->ids);
    b->caption = malloc((size_t)ctx * sizeof *b->caption);
    if (!b->pixels || !b->out || !b->ids || !b->caption) return 0;
    bench_fill_uniform(b->pixels, 3 * (size_t)S * S, 12345, 2.0f);
    b->ids[0] = V - 2;
    for (int i = 1; i <= 10; i++) b->ids[i] = (1000 + 37 * i) % (V - 2);
    b->ids[11] = V - 1;
    return 1;
}

static void usage(FILE *out) {
    fprintf(out, "usage: bench_tasks --model DIR [--threads N] [--repeats N] [--tokens N] "
                 "[--cpu-time] [--decode-bf16]\n"
                 "  --model DIR   checkpoint with adapters (make_random_clip --adapters 64)\n"
                 "  --threads N   backend threads (default 0: all CPUs)\n"
                 "  --repeats N   timed calls per workload (default 10, at most 200)\n"
                 "  --tokens N    caption tokens after SOS (default 30)\n"
                 "  --cpu-time    time with process CPU time instead of wall time\n"
                 "  --decode-bf16 captions decode on bfloat16 weight copies (tl_model_opts)\n"
                 "  --help, --version\n");
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},
        {"threads", required_argument, 0, 't'},
        {"repeats", required_argument, 0, 'r'},
        {"tokens", required_argument, 0, 'n'},
        {"cpu-time", no_argument, 0, 'c'},
        {"decode-bf16", no_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    const char *dir = NULL;
    int threads = 0, repeats = 10, tokens = 30, decode_bf16 = 0, c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'm')
            dir = optarg;
        else if (c == 't')
            threads = atoi(optarg);
        else if (c == 'r')
            repeats = atoi(optarg);
        else if (c == 'n')
            tokens = atoi(optarg);
        else if (c == 'c')
            cpu_time = 1;
        else if (c == 'b')
            decode_bf16 = 1;
        else if (c == 'h')
            return usage(stdout), 0;
        else if (c == 'v')
            return printf("bench_tasks %s\n", TAILOR_VERSION), 0;
        else
            return usage(stderr), 2;
    }
    if (!dir || repeats < 1 || repeats > MAX_REPEATS || tokens < 1) return usage(stderr), 2;
    bench b = {0};
    tl_error err;
    tl_model_opts opts = {.n_threads = threads, .decode_bf16 = decode_bf16};
    if (tl_model_open(&b.m, dir, &opts, &err)) {
        fprintf(stderr, "bench_tasks: %s\n", err.message);
        return 1;
    }
    b.info = tl_model_get_info(b.m);
    if (decode_bf16)
        printf("decode_bf16: %.1f MiB of bfloat16 weight copies\n",
               b.info->decode_bf16_bytes / 1048576.0);
    b.caption_limit = tokens + 1 < b.info->context_length ? tokens + 1 : b.info->context_length;
    int rc = 1;
    if (make_inputs(&b)) {
        timing plain = time_calls(&b, run_plain_image, repeats);
        timing xmr = time_calls(&b, run_xmr_image, repeats);
        timing compose = time_calls(&b, run_compose, repeats);
        timing caption = time_calls(&b, run_caption, repeats);
        char caption_name[64];
        snprintf(caption_name, sizeof caption_name, "greedy caption (%d tokens)",
                 b.caption_len - 1);
        print_timing("plain image embedding", plain, plain, NULL);
        print_timing("xmr image embedding (TSA)", xmr, plain, "plain");
        print_timing("compose (fusion, 12 ids)", compose, plain, "plain image");
        print_timing(caption_name, caption, plain, "plain image");
        rc = plain.min > 0 && xmr.min > 0 && compose.min > 0 && caption.min > 0 ? 0 : 1;
    }
    free(b.pixels);
    free(b.out);
    free(b.ids);
    free(b.caption);
    tl_model_close(b.m);
    return rc;
}
