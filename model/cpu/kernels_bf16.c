/* bfloat16 CPU kernels for reduced-precision caption decoding (tl_model_opts.decode_bf16):
 * rounding fp32 to bfloat16, and Linear with bfloat16 weights for few rows, on AVX512_BF16 dot
 * products (_mm512_dpbf16_ps) where the compiler targets them, else a portable vector loop that
 * widens bfloat16 to fp32.
 * Not for: training, or products of many rows (sgemm in kernels_matmul.c). */
#include <string.h>

#include "kernels.h"

#ifdef __AVX512BF16__
#include <immintrin.h>
#endif

enum { BLOCK = 4 }; /* weight rows whose dot products one pass over x computes */

/* Branch-free, so that loops over it vectorise. */
uint16_t cpu_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t nearest = (u + 0x7fffu + (u >> 16 & 1)) >> 16, quiet_nan = u >> 16 | 0x40;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : nearest);
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
/* The portable loop: bfloat16 widened to fp32 (exact) in GCC vectors of any SIMD width. */
typedef float vfloat __attribute__((vector_size(64)));
typedef uint32_t vu32 __attribute__((vector_size(64)));
typedef uint16_t vu16 __attribute__((vector_size(32)));
enum { VLEN = 16 };

static inline vfloat widen_v(const uint16_t *w) {
    vu16 h;
    memcpy(&h, w, sizeof h);
    vu32 u = __builtin_convertvector(h, vu32) << 16;
    vfloat f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 16 values of x rounded to bfloat16 as cpu_bf16_round does, widened back. */
static inline vfloat round_v(const float *x) {
    vu32 u;
    memcpy(&u, x, sizeof u);
    vu32 nan = (vu32)((u & 0x7fffffffu) > 0x7f800000u); /* all ones where NaN */
    u = (nan & (u | 0x400000u)) | (~nan & (u + 0x7fffu + (u >> 16 & 1)));
    u &= 0xffff0000u;
    vfloat f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float widen(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float sum_v(vfloat v) {
    float s = 0;
    for (int i = 0; i < VLEN; i++) s += v[i];
    return s;
}

static void dots_block(float dot[BLOCK], const float *x, const uint16_t *w, int K) {
    vfloat acc[BLOCK] = {{0}};
    int k = 0;
    for (; k + VLEN <= K; k += VLEN) {
        vfloat xv = round_v(x + k);
        for (int j = 0; j < BLOCK; j++) {
            __builtin_prefetch(w + (size_t)(j + BLOCK) * K + k);
            acc[j] += xv * widen_v(w + (size_t)j * K + k);
        }
    }
    for (int j = 0; j < BLOCK; j++) {
        float s = sum_v(acc[j]);
        for (int t = k; t < K; t++) s += widen(cpu_bf16_round(x[t])) * widen(w[(size_t)j * K + t]);
        dot[j] = s;
    }
}

static float dot_one(const float *x, const uint16_t *w, int K) {
    vfloat acc = {0};
    int k = 0;
    for (; k + VLEN <= K; k += VLEN) acc += round_v(x + k) * widen_v(w + k);
    float s = sum_v(acc);
    for (; k < K; k++) s += widen(cpu_bf16_round(x[k])) * widen(w[k]);
    return s;
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
    size_t grain = cpu_linear_grain(M, K, N, (size_t)N * K * sizeof *w, blocks);
    tl_pool_for(pool, blocks, grain, linear_bf16_blocks, &j);
}
