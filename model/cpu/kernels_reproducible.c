/* Linear with a fixed summation order, for results that must not depend on how rows are
 * batched or split across threads (session turns, compared bit for bit across replicas): every
 * y element is one dot product whose order is set by K alone. Tiles of weight rows × x rows
 * share each weight row read across the whole batch. Plain C that GCC vectorises.
 * Not for: throughput products where rounding order may vary (cpu_linear, OpenBLAS). */
#include <math.h>

#include "kernels.h"

/* DOT_LANES: partial sums per dot product. TILE_W × TILE_X dot products run together.
 * GRAIN_TILES: weight-row tiles per thread hand-off. */
enum { DOT_LANES = 16, TILE_W = 4, TILE_X = 4, GRAIN_TILES = 8 };

/* Adds the lanes pairwise: lane l += lane l + 8, then + 4, + 2, + 1. */
static inline float lanes_sum(float *acc) {
    for (int half = DOT_LANES / 2; half > 0; half /= 2)
        for (int l = 0; l < half; l++) acc[l] += acc[l + half];
    return acc[0];
}

/* dot[r][i] = w row r · x row i for r < R ≤ TILE_W, i < S ≤ TILE_X. Lane l accumulates the
 * terms k ≡ l (mod DOT_LANES) in increasing k with fmaf (exact, so the compiler's vector width
 * cannot change it), then lanes_sum. Inlined with constant R and S for the common tiles. */
static inline __attribute__((always_inline)) void
dot_tile(float dot[TILE_W][TILE_X], const float *w, int K, int R, const float *const *x, int S) {
    float acc[TILE_W][TILE_X][DOT_LANES] = {{{0}}};
    int full = K - K % DOT_LANES;
    for (int k = 0; k < full; k += DOT_LANES)
        for (int r = 0; r < R; r++)
            for (int i = 0; i < S; i++)
                for (int l = 0; l < DOT_LANES; l++)
                    acc[r][i][l] = fmaf(w[(size_t)r * K + k + l], x[i][k + l], acc[r][i][l]);
    for (int l = 0; l < K - full; l++)
        for (int r = 0; r < R; r++)
            for (int i = 0; i < S; i++)
                acc[r][i][l] = fmaf(w[(size_t)r * K + full + l], x[i][full + l], acc[r][i][l]);
    for (int r = 0; r < R; r++)
        for (int i = 0; i < S; i++) dot[r][i] = lanes_sum(acc[r][i]);
}

/* Full tiles get code specialised for their shape; the last rows of an N not divisible by
 * TILE_W take the generic path (same order, slower). */
static void dot_tile_any(float dot[TILE_W][TILE_X], const float *w, int K, int R,
                         const float *const *x, int S) {
    if (R != TILE_W) {
        dot_tile(dot, w, K, R, x, S);
        return;
    }
    switch (S) {
        case 4:
            dot_tile(dot, w, K, TILE_W, x, 4);
            break;
        case 3:
            dot_tile(dot, w, K, TILE_W, x, 3);
            break;
        case 2:
            dot_tile(dot, w, K, TILE_W, x, 2);
            break;
        default:
            dot_tile(dot, w, K, TILE_W, x, 1);
            break;
    }
}

typedef struct reproducible_job {
    float *y;
    const float *x, *w, *b;
    int ldy, ldx, M, K, N, accumulate;
} reproducible_job;

/* y element (i, n) from its dot product: dot + b[n], added to y when accumulating. */
static void store_tile(const reproducible_job *j, float dot[TILE_W][TILE_X], int n0, int R, int i0,
                       int S) {
    for (int i = 0; i < S; i++) {
        float *y = j->y + (size_t)(i0 + i) * j->ldy + n0;
        for (int r = 0; r < R; r++) {
            float v = j->b ? dot[r][i] + j->b[n0 + r] : dot[r][i];
            y[r] = j->accumulate ? y[r] + v : v;
        }
    }
}

/* Items are tiles of TILE_W weight rows; each is read once against every x row. */
static void reproducible_tiles(void *ctx, size_t begin, size_t end, int thread) {
    const reproducible_job *j = ctx;
    for (size_t t = begin; t < end; t++) {
        int n0 = (int)t * TILE_W, R = j->N - n0 < TILE_W ? j->N - n0 : TILE_W;
        for (int i0 = 0; i0 < j->M; i0 += TILE_X) {
            int S = j->M - i0 < TILE_X ? j->M - i0 : TILE_X;
            const float *x[TILE_X];
            for (int i = 0; i < S; i++) x[i] = j->x + (size_t)(i0 + i) * j->ldx;
            float dot[TILE_W][TILE_X];
            dot_tile_any(dot, j->w + (size_t)n0 * j->K, j->K, R, x, S);
            store_tile(j, dot, n0, R, i0, S);
        }
    }
}

void cpu_linear_reproducible(tl_pool *pool, float *y, int ldy, const float *x, int ldx,
                             const float *w, const float *b, int M, int K, int N, int accumulate) {
    if (M <= 0 || N <= 0) return;
    reproducible_job j = {y, x, w, b, ldy ? ldy : N, ldx ? ldx : K, M, K, N, accumulate};
    size_t tiles = (size_t)(N + TILE_W - 1) / TILE_W;
    tl_pool_for(pool, tiles, GRAIN_TILES, reproducible_tiles, &j);
}
