/* Linear for few rows (a text query, a pooled batch): y[M,N] = x[M,K]·w[N,K]ᵀ with M ≤
 * CPU_SMALL_M. Each weight row is read from memory once and used against every x row held in
 * cache, which is what bounds these products; blocks of 4 weight rows × 4 x rows keep 16
 * vector accumulators in registers (GCC vector extensions, any SIMD width).
 * Not for: large M (OpenBLAS sgemm is faster there). */
#include <string.h>

#include "kernels.h"

typedef float vfloat __attribute__((vector_size(64)));
enum { VLEN = 16, BLOCK = 4 };

static inline vfloat load_v(const float *p) {
    vfloat v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float sum_v(vfloat v) {
    float s = 0;
    for (int i = 0; i < VLEN; i++) s += v[i];
    return s;
}

/* dot[i][j] = x row i · w row j for a 4×4 block (K multiple-of-16 part and tail). */
static void block_4x4(float dot[BLOCK][BLOCK], const float *x, int ldx, const float *w, int K) {
    vfloat acc[BLOCK][BLOCK] = {{{0}}};
    int k = 0;
    for (; k + VLEN <= K; k += VLEN) {
        vfloat wv[BLOCK];
        for (int j = 0; j < BLOCK; j++) {
            __builtin_prefetch(w + (size_t)(j + BLOCK) * K + k); /* the next block's rows */
            wv[j] = load_v(w + (size_t)j * K + k);
        }
        for (int i = 0; i < BLOCK; i++) {
            vfloat xv = load_v(x + (size_t)i * ldx + k);
            for (int j = 0; j < BLOCK; j++) acc[i][j] += xv * wv[j];
        }
    }
    for (int i = 0; i < BLOCK; i++)
        for (int j = 0; j < BLOCK; j++) {
            float s = sum_v(acc[i][j]);
            for (int t = k; t < K; t++) s += x[(size_t)i * ldx + t] * w[(size_t)j * K + t];
            dot[i][j] = s;
        }
}

/* dot[j] = x row · w row j for 4 weight rows. */
static void block_1x4(float dot[BLOCK], const float *x, const float *w, int K) {
    vfloat acc[BLOCK] = {{0}};
    int k = 0;
    for (; k + VLEN <= K; k += VLEN) {
        vfloat xv = load_v(x + k);
        for (int j = 0; j < BLOCK; j++) {
            __builtin_prefetch(w + (size_t)(j + BLOCK) * K + k);
            acc[j] += xv * load_v(w + (size_t)j * K + k);
        }
    }
    for (int j = 0; j < BLOCK; j++) {
        float s = sum_v(acc[j]);
        for (int t = k; t < K; t++) s += x[t] * w[(size_t)j * K + t];
        dot[j] = s;
    }
}

static float dot_1x1(const float *x, const float *w, int K) {
    vfloat acc = {0};
    int k = 0;
    for (; k + VLEN <= K; k += VLEN) acc += load_v(x + k) * load_v(w + k);
    float s = sum_v(acc);
    for (; k < K; k++) s += x[k] * w[k];
    return s;
}

static inline void store(float *y, float dot, const float *b, int n, int accumulate) {
    *y = (accumulate ? *y : 0.0f) + dot + (b ? b[n] : 0.0f);
}

/* Output columns n..n+3 for every row. */
static void columns_4(float *y, int ldy, const float *x, int ldx, const float *w, const float *b,
                      int M, int K, int n, int accumulate) {
    const float *wn = w + (size_t)n * K;
    int m = 0;
    for (; m + BLOCK <= M; m += BLOCK) {
        float dot[BLOCK][BLOCK];
        block_4x4(dot, x + (size_t)m * ldx, ldx, wn, K);
        for (int i = 0; i < BLOCK; i++)
            for (int j = 0; j < BLOCK; j++)
                store(&y[(size_t)(m + i) * ldy + n + j], dot[i][j], b, n + j, accumulate);
    }
    for (; m < M; m++) {
        float dot[BLOCK];
        block_1x4(dot, x + (size_t)m * ldx, wn, K);
        for (int j = 0; j < BLOCK; j++)
            store(&y[(size_t)m * ldy + n + j], dot[j], b, n + j, accumulate);
    }
}

void cpu_gemm_small_m(float *y, int ldy, const float *x, int ldx, const float *w, const float *b,
                      int M, int K, int N, int accumulate) {
    int n = 0;
    for (; n + BLOCK <= N; n += BLOCK) columns_4(y, ldy, x, ldx, w, b, M, K, n, accumulate);
    for (; n < N; n++)
        for (int m = 0; m < M; m++)
            store(&y[(size_t)m * ldy + n], dot_1x1(x + (size_t)m * ldx, w + (size_t)n * K, K), b, n,
                  accumulate);
}
