/* Times CM-NTM session turns (model/ntm.c) at the real model's size, C = 8, N = 8,
 * W = H = P = 512, with random weights: batches of N sessions through ntm_turn_batch (N = 1 is
 * one session's turn); prints the median time per batch and per turn (batch / N) with the
 * 10th/90th percentiles, and a checksum of the last queries (equal across builds and thread
 * counts). Not a test: timings need a quiet machine.
 * Usage: bench_ntm [--batch N]... [--threads N] [rounds] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ntm.h"
#include "tailor_model.h"

#define MAX_SIZES 8
#define MAX_BATCH 1024

static float random_uniform(unsigned *seed, float scale) {
    return scale * ((float)rand_r(seed) / (float)RAND_MAX * 2.0f - 1.0f);
}

/* Points every block tensor of w at fresh random values in one allocation (returned, owned by
 * the caller). */
static float *random_weights(ntm_weights *w, const ntm_config *cfg) {
    size_t H = (size_t)cfg->hidden, W = (size_t)cfg->width, N = (size_t)cfg->slots;
    size_t P = (size_t)cfg->proj, in_max = 2 * P;
    size_t per_block = 4 * H * (in_max + W) + 4 * H * H + 8 * H + (W + 6) * (H + 1) +
                       (3 * W + 6) * (H + 1) + P * (H + W + 1) + N * W + W;
    float *all = malloc((size_t)cfg->blocks * per_block * sizeof(float));
    if (!all) return NULL;
    unsigned seed = 1;
    for (size_t i = 0; i < (size_t)cfg->blocks * per_block; i++)
        all[i] = random_uniform(&seed, 0.04f);
    float *p = all;
    for (int c = 0; c < cfg->blocks; c++) {
        ntm_block_weights *b = &w->blocks[c];
        b->in_dim = c == 0 ? (int)P : (int)in_max;
        const float **fields[] = {&b->lstm_w_ih, &b->lstm_w_hh, &b->lstm_b_ih, &b->lstm_b_hh,
                                  &b->read_w,    &b->read_b,    &b->write_w,   &b->write_b,
                                  &b->out_w,     &b->out_b,     &b->mem_init,  &b->read_init};
        const size_t sizes[] = {
            4 * H * (b->in_dim + W), 4 * H * H, 4 * H,       4 * H, (W + 6) * H, W + 6,
            (3 * W + 6) * H,         3 * W + 6, P * (H + W), P,     N * W,       W};
        for (int i = 0; i < 12; i++) *fields[i] = p, p += sizes[i];
    }
    return all;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench_ntm [--batch N]... [--threads N] [rounds]\n"
            "times CM-NTM turns (C=8, N=8, W=H=P=512, random weights) in batches\n"
            "  --batch N     sessions per batch, 1..%d; repeatable (default: 1 and 32)\n"
            "  --threads N   backend threads (default 0: all CPUs)\n"
            "  rounds        timed batches per size (default 200 / N, at least 20)\n"
            "  --help, --version\n",
            MAX_BATCH);
}

/* FNV-1a over the bytes of q[n], to compare runs bit for bit. */
static uint32_t checksum(const float *q, size_t n) {
    uint32_t h = 2166136261u;
    const unsigned char *p = (const unsigned char *)q;
    for (size_t i = 0; i < n * sizeof *q; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Times `rounds` batch turns of n fresh sessions (after 3 untimed) and prints the line. */
static int time_batch(const ntm_weights *w, int n, int rounds) {
    size_t P = (size_t)w->cfg.proj;
    ntm_state *states = calloc((size_t)n, sizeof *states);
    ntm_state **ptrs = malloc((size_t)n * sizeof *ptrs);
    float *x = malloc((size_t)n * P * sizeof *x), *q = malloc((size_t)n * P * sizeof *q);
    double *times = malloc((size_t)rounds * sizeof *times);
    tl_error err = {0};
    int ok = states && ptrs && x && q && times;
    for (int i = 0; ok && i < n; i++) {
        ptrs[i] = &states[i];
        ok = !ntm_state_alloc(&states[i], &w->cfg, &err) && !ntm_state_init(&states[i], w, &err);
    }
    unsigned seed = 2;
    for (int t = -3; ok && t < rounds; t++) {
        for (size_t i = 0; i < (size_t)n * P; i++) x[i] = random_uniform(&seed, 0.044f);
        double t0 = bench_seconds(CLOCK_MONOTONIC);
        ok = ntm_turn_batch(w, ptrs, x, n, q, &err) == TL_OK;
        if (t >= 0) times[t] = bench_seconds(CLOCK_MONOTONIC) - t0;
    }
    if (ok) {
        bench_sort_times(times, rounds);
        double median = times[rounds / 2];
        printf("batch %3d: median %8.3f ms per batch, %.3f ms per turn (p10 %.3f, p90 %.3f ms per "
               "batch; %d batches; q checksum %08x)\n",
               n, 1e3 * median, 1e3 * median / n, 1e3 * times[rounds / 10],
               1e3 * times[rounds * 9 / 10], rounds, checksum(q, (size_t)n * P));
    } else {
        fprintf(stderr, "bench_ntm: batch %d: %s\n", n, err.message[0] ? err.message : "no memory");
    }
    for (int i = 0; states && i < n; i++) ntm_state_release(&states[i]);
    free(states);
    free(ptrs);
    free(x);
    free(q);
    free(times);
    return ok;
}

int main(int argc, char **argv) {
    static const struct option options[] = {
        {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'v'},
        {0, 0, 0, 0},
    };
    int sizes[MAX_SIZES] = {1, 32}, n_sizes = 0, threads = 0, rounds = 0, c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'b' && n_sizes < MAX_SIZES)
            sizes[n_sizes++] = atoi(optarg);
        else if (c == 't')
            threads = atoi(optarg);
        else if (c == 'h')
            return usage(stdout), 0;
        else if (c == 'v')
            return printf("bench_ntm %s\n", TAILOR_VERSION), 0;
        else
            return usage(stderr), 2;
    }
    if (optind < argc) rounds = atoi(argv[optind]);
    if (!n_sizes) n_sizes = 2;
    for (int i = 0; i < n_sizes; i++)
        if (sizes[i] < 1 || sizes[i] > MAX_BATCH) return usage(stderr), 2;
    if (rounds < 0 || threads < 0) return usage(stderr), 2;

    ntm_config cfg = {.kind = NTM_KIND_CASCADE,
                      .blocks = 8,
                      .slots = 8,
                      .width = 512,
                      .hidden = 512,
                      .proj = 512};
    ntm_block_weights blocks[8];
    tl_backend *be = NULL;
    tl_error err = {0};
    if (tl_backend_cpu_create(&be, threads, &err)) {
        fprintf(stderr, "bench_ntm: %s\n", err.message);
        return 1;
    }
    ntm_weights w = {
        .cfg = cfg, .blocks = blocks, .scale = 4.0f, .be = be, .ws = ntm_workspace_create(&cfg)};
    float *all = random_weights(&w, &cfg);
    int ok = all && w.ws;
    if (!ok) fprintf(stderr, "bench_ntm: out of memory for the weights\n");
    if (ok) printf("ntm turns C=8 N=8 W=H=P=512, threads %d\n", threads);
    for (int i = 0; ok && i < n_sizes; i++) {
        int r = rounds ? rounds : 200 / sizes[i] > 20 ? 200 / sizes[i] : 20;
        ok = time_batch(&w, sizes[i], r);
    }
    free(all);
    ntm_workspace_free(w.ws);
    be->destroy(be);
    return ok ? 0 : 1;
}
