/* bfloat16 CPU kernels for reduced-precision caption decoding (tl_model_opts.decode_bf16):
 * rounding fp32 to bfloat16, and Linear with bfloat16 weights for few rows, on AVX512_BF16 dot
 * products (_mm512_dpbf16_ps) where the compiler targets them, a portable loop otherwise.
 * Not for: training, or products of many rows (sgemm in kernels_matmul.c). */
#include <string.h>

#include "kernels.h"

#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

enum { BLOCK = 4 }; /* weight rows whose dot products one pass over x computes */

uint16_t cpu_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40); /* quiet NaN */
    u += 0x7fffu + (u >> 16 & 1);
    return (uint16_t)(u >> 16);
}

typedef struct to_bf16_job {
    uint16_t *dst;
    const float *src;
} to_bf16_job;

static void to_bf16_range(void *ctx, size_t begin, size_t end, int thread) {
    const to_bf16_job *j = ctx;
    for (size_t i = begin; i < end; i++) j->dst[i] = cpu_bf16_round(j->src[i]);
}

void cpu_to_bf16(tl_pool *pool, uint16_t *dst, const float *src, size_t n) {
    to_bf16_job j = {dst, src};
    tl_pool_for(pool, n, 1 << 16, to_bf16_range, &j);
}

#ifdef __AVX512BF16__
/* 32 bfloat16 of x[k..k+n) (n ≤ 32; zeros past n), rounded from fp32. */
static inline __m512bh load_x_bf16(const float *x, int n) {
    __mmask16 lo = n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1);
    __mmask16 hi = n >= 32 ? 0xffff : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    return _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + 16), _mm512_maskz_loadu_ps(lo, x));
}

static inline __m512bh load_w_bf16(const uint16_t *w, int n) {
    __mmask32 m = n >= 32 ? 0xffffffffu : (__mmask32)((1u << n) - 1);
    return (__m512bh)_mm512_maskz_loadu_epi16(m, w);
}

/* dot[j] = x · w row j for BLOCK weight rows of K. */
static void dots_block(float dot[BLOCK], const float *x, const uint16_t *w, int K) {
    __m512 acc[BLOCK];
    for (int j = 0; j < BLOCK; j++) acc[j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 32) {
        int n = K - k;
        __m512bh xv = load_x_bf16(x + k, n);
        for (int j = 0; j < BLOCK; j++) {
            _mm_prefetch((const char *)(w + (size_t)(j + BLOCK) * K + k), _MM_HINT_T0);
            acc[j] = _mm512_dpbf16_ps(acc[j], xv, load_w_bf16(w + (size_t)j * K + k, n));
        }
    }
    for (int j = 0; j < BLOCK; j++) dot[j] = _mm512_reduce_add_ps(acc[j]);
}

static float dot_one(const float *x, const uint16_t *w, int K) {
    __m512 acc = _mm512_setzero_ps();
    for (int k = 0; k < K; k += 32)
        acc = _mm512_dpbf16_ps(acc, load_x_bf16(x + k, K - k), load_w_bf16(w + k, K - k));
    return _mm512_reduce_add_ps(acc);
}
#else
static float widen(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float dot_one(const float *x, const uint16_t *w, int K) {
    float s = 0;
    for (int k = 0; k < K; k++) s += widen(cpu_bf16_round(x[k])) * widen(w[k]);
    return s;
}

static void dots_block(float dot[BLOCK], const float *x, const uint16_t *w, int K) {
    for (int j = 0; j < BLOCK; j++) dot[j] = dot_one(x, w + (size_t)j * K, K);
}
#endif

typedef struct linear_bf16_job {
    float *y;
    const float *x, *b;
    const uint16_t *w;
    int ldy, ldx, M, K, N, accumulate;
} linear_bf16_job;

static inline void store(float *y, float dot, const float *b, int n, int accumulate) {
    *y = (accumulate ? *y : 0.0f) + dot + (b ? b[n] : 0.0f);
}

/* Output columns [n0, n1) for every row; a block of weight rows stays in cache across rows. */
static void columns(const linear_bf16_job *j, int n0, int n1) {
    int n = n0;
    for (; n + BLOCK <= n1; n += BLOCK) {
        const uint16_t *wn = j->w + (size_t)n * j->K;
        for (int m = 0; m < j->M; m++) {
            float dot[BLOCK];
            dots_block(dot, j->x + (size_t)m * j->ldx, wn, j->K);
            for (int c = 0; c < BLOCK; c++)
                store(&j->y[(size_t)m * j->ldy + n + c], dot[c], j->b, n + c, j->accumulate);
        }
    }
    for (; n < n1; n++)
        for (int m = 0; m < j->M; m++)
            store(&j->y[(size_t)m * j->ldy + n],
                  dot_one(j->x + (size_t)m * j->ldx, j->w + (size_t)n * j->K, j->K), j->b, n,
                  j->accumulate);
}

/* Items are blocks of CPU_LINEAR_BLOCK output columns. */
static void linear_bf16_blocks(void *ctx, size_t begin, size_t end, int thread) {
    const linear_bf16_job *j = ctx;
    int n1 = (int)end * CPU_LINEAR_BLOCK;
    columns(j, (int)begin * CPU_LINEAR_BLOCK, n1 < j->N ? n1 : j->N);
}

void cpu_linear_bf16(tl_pool *pool, float *y, int ldy, const float *x, int ldx, const uint16_t *w,
                     const float *b, int M, int K, int N, int accumulate) {
    if (M <= 0 || N <= 0) return;
    linear_bf16_job j = {y, x, b, w, ldy ? ldy : N, ldx ? ldx : K, M, K, N, accumulate};
    size_t blocks = (size_t)(N + CPU_LINEAR_BLOCK - 1) / CPU_LINEAR_BLOCK;
    tl_pool_for(pool, blocks, cpu_linear_grain(M, K, N, blocks), linear_bf16_blocks, &j);
}
