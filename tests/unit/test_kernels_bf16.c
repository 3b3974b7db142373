/* The CPU bfloat16 kernels (kernels_bf16.c) against double-precision references: rounding to
 * nearest even, and Linear with bfloat16 weights on odd sizes, strides, bias and accumulation,
 * with 1 and 3 threads. Built twice: on the library's kernels (AVX512_BF16 where the machine
 * has it) and with the portable loop compiled in (kernels_bf16_portable). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../harness.h"
#include "cpu/kernels.h"

#include "test_random.h"

static float widen(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x rounded to 8 significant bits, ties to even, by frexp/nearbyint (finite normal x). */
static double round_to_bf16(double x) {
    if (x == 0) return x;
    int e;
    double m = frexp(x, &e); /* |m| in [0.5, 1) */
    return ldexp(nearbyint(ldexp(m, 8)), e - 8);
}

TEST(rounding_is_to_nearest_even) {
    const float one = 1.0f;
    CHECK(cpu_bf16_round(one) == 0x3f80);
    CHECK(cpu_bf16_round(one + 0x1p-8f) == 0x3f80);            /* tie, even below */
    CHECK(cpu_bf16_round(one + 3 * 0x1p-8f) == 0x3f82);        /* tie, even above */
    CHECK(cpu_bf16_round(one + 0x1p-8f + 0x1p-20f) == 0x3f81); /* above the tie */
    CHECK(cpu_bf16_round(-2.5f) == 0xc020);
    CHECK(cpu_bf16_round(INFINITY) == 0x7f80);
    CHECK(cpu_bf16_round(FLT_MAX) == 0x7f80); /* rounds past the largest bfloat16 */
    CHECK(isnan(widen(cpu_bf16_round(NAN))));
    CHECK(isnan(widen(cpu_bf16_round(-NAN))));
    float payload_nan;
    memcpy(&payload_nan, &(uint32_t){0x7fffffffu}, sizeof payload_nan);
    CHECK(isnan(widen(cpu_bf16_round(payload_nan))));
    for (int t = 1; t <= 3; t += 2) {
        tl_pool *pool = tl_pool_create(t);
        REQUIRE(pool);
        size_t n = 200003;
        float *x = rand_array(n, -1000, 1000);
        uint16_t *h = malloc(n * sizeof *h);
        cpu_to_bf16(pool, h, x, n);
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += widen(h[i]) != round_to_bf16(x[i]);
        CHECKF(bad == 0, "threads %d: %zu of %zu values misrounded", t, bad, n);
        free(x), free(h);
        tl_pool_destroy(pool);
    }
}

/* y from cpu_linear_bf16 against two references: exact products of the bfloat16-rounded
 * inputs (the error left is fp32 summation: K·2^-23 of Σ|x·w|), and the fp32 inputs (plus
 * rounding x and w: 2^-8 of Σ|x·w|). Columns past N must stay untouched. */
static void check_linear_bf16(tl_pool *pool, int M, int K, int N, int ldx, int ldy, int with_bias,
                              int accumulate) {
    float *x = rand_array((size_t)M * ldx, -1, 1), *w = rand_array((size_t)N * K, -1, 1);
    float *b = with_bias ? rand_array(N, -1, 1) : NULL;
    float *y = rand_array((size_t)M * ldy, -1, 1), *y0 = malloc((size_t)M * ldy * sizeof *y0);
    uint16_t *wh = malloc((size_t)N * K * sizeof *wh);
    memcpy(y0, y, (size_t)M * ldy * sizeof *y0);
    cpu_to_bf16(pool, wh, w, (size_t)N * K);
    cpu_linear_bf16(pool, y, ldy, x, ldx, wh, b, M, K, N, accumulate);
    double worst_rounded = 0, worst_exact = 0;
    int untouched = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double base = (accumulate ? y0[(size_t)i * ldy + j] : 0) + (b ? b[j] : 0);
            double rounded = 0, exact = 0, magnitude = fabs(base) + 1e-30;
            for (int k = 0; k < K; k++) {
                double xv = x[(size_t)i * ldx + k], wv = w[(size_t)j * K + k];
                rounded += round_to_bf16(xv) * round_to_bf16(wv);
                exact += xv * wv;
                magnitude += fabs(xv * wv);
            }
            double got = y[(size_t)i * ldy + j];
            worst_rounded = fmax(worst_rounded, fabs(got - base - rounded) / magnitude);
            worst_exact = fmax(worst_exact, fabs(got - base - exact) / magnitude);
        }
        for (int j = N; j < ldy; j++)
            untouched &= y[(size_t)i * ldy + j] == y0[(size_t)i * ldy + j];
    }
    CHECKF(worst_rounded <= (K + 2) * 0x1p-23, "%dx%dx%d: %g of Σ|xw| from the rounded inputs", M,
           K, N, worst_rounded);
    CHECKF(worst_exact <= 0x1p-8 + (K + 2) * 0x1p-23, "%dx%dx%d: %g of Σ|xw| from fp32", M, K, N,
           worst_exact);
    CHECKF(untouched, "%dx%dx%d: columns past N written", M, K, N);
    free(x), free(w), free(b), free(y), free(y0), free(wh);
}

TEST(linear_bf16_matches_reference) {
    for (int t = 1; t <= 3; t += 2) {
        tl_pool *pool = tl_pool_create(t);
        REQUIRE(pool);
        check_linear_bf16(pool, 1, 7, 5, 7, 5, 1, 0);
        check_linear_bf16(pool, 1, 48, 512, 48, 512, 1, 0);     /* tailor-tiny's decoder */
        check_linear_bf16(pool, 1, 512, 2048, 512, 2048, 1, 0); /* shared between threads */
        check_linear_bf16(pool, 1, 2048, 77, 2048, 77, 0, 1);   /* long rows, odd column count */
        check_linear_bf16(pool, 3, 100, 257, 100, 260, 1, 0);   /* a beam of 3, strides */
        check_linear_bf16(pool, 5, 33, 130, 40, 131, 1, 1);
        check_linear_bf16(pool, 2, 32, 16, 32, 16, 0, 0);
        check_linear_bf16(pool, 2, 0, 16, 0, 16, 1, 0); /* no inputs: the bias */
        tl_pool_destroy(pool);
    }
}

/* A NaN in x makes its row's outputs NaN and leaves the other rows finite. */
TEST(linear_bf16_propagates_nan) {
    tl_pool *pool = tl_pool_create(1);
    REQUIRE(pool);
    int M = 2, K = 40, N = 8;
    float *x = rand_array((size_t)M * K, -1, 1), *w = rand_array((size_t)N * K, -1, 1), y[16];
    uint16_t wh[320];
    cpu_to_bf16(pool, wh, w, (size_t)N * K);
    uint32_t nan_bits = 0x7fffffffu; /* a NaN whose rounding must not carry into the sign */
    memcpy(&x[5], &nan_bits, sizeof nan_bits);
    cpu_linear_bf16(pool, y, 0, x, 0, wh, NULL, M, K, N, 0);
    for (int j = 0; j < N; j++) CHECKF(isnan(y[j]) && isfinite(y[N + j]), "column %d", j);
    free(x), free(w);
    tl_pool_destroy(pool);
}

int main(void) {
    RUN(rounding_is_to_nearest_even);
    RUN(linear_bf16_matches_reference);
    RUN(linear_bf16_propagates_nan);
    return th_done();
}
