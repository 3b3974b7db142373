/* Times one CM-NTM session turn (model/ntm.c) at the real model's size, C = 8, N = 8,
 * W = H = P = 512, with random weights; prints the median and the 10th/90th percentiles.
 * Not a test: timings need a quiet machine. Usage: bench_ntm [turns] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "ntm.h"
#include "tailor_model.h"

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

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "--version"))) {
        printf(!strcmp(argv[1], "--help") ? "usage: bench_ntm [turns]\ntimes one CM-NTM turn "
                                            "(C=8, N=8, W=H=P=512, random weights)\n"
                                          : "bench_ntm " TAILOR_VERSION "\n");
        return 0;
    }
    int turns = argc > 1 ? atoi(argv[1]) : 200;
    if (turns < 1) turns = 200;
    ntm_config cfg = {.kind = NTM_KIND_CASCADE,
                      .blocks = 8,
                      .slots = 8,
                      .width = 512,
                      .hidden = 512,
                      .proj = 512};
    ntm_block_weights blocks[8];
    ntm_weights w = {.cfg = cfg, .blocks = blocks, .scale = 4.0f, .ws = ntm_workspace_create(&cfg)};
    float *all = random_weights(&w, &cfg);
    ntm_state s;
    tl_error err = {0};
    if (!all || !w.ws || ntm_state_alloc(&s, &cfg, &err) != TL_OK ||
        ntm_state_init(&s, &w, &err) != TL_OK) {
        fprintf(stderr, "bench_ntm: setup failed: %s\n", err.message);
        return 1;
    }
    float x[512], q[512];
    unsigned seed = 2;
    double *times = malloc((size_t)turns * sizeof *times);
    for (int t = -10; t < turns; t++) { /* 10 warm-up turns */
        for (int i = 0; i < 512; i++) x[i] = random_uniform(&seed, 0.044f);
        double t0 = bench_seconds(CLOCK_MONOTONIC);
        if (ntm_turn(&w, &s, x, q, NULL, &err) != TL_OK) {
            fprintf(stderr, "bench_ntm: %s\n", err.message);
            return 1;
        }
        if (t >= 0) times[t] = bench_seconds(CLOCK_MONOTONIC) - t0;
    }
    bench_sort_times(times, turns);
    printf("ntm turn C=8 N=8 W=H=P=512: median %.3f ms, p10 %.3f ms, p90 %.3f ms (%d turns)\n",
           1e3 * times[turns / 2], 1e3 * times[turns / 10], 1e3 * times[turns * 9 / 10], turns);
    free(times);
    free(all);
    ntm_state_release(&s);
    ntm_workspace_free(w.ws);
    return 0;
}
