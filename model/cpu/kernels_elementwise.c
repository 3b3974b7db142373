/* Row-wise and element-wise CPU kernels: LayerNorm, activations, softmax, axpy, gathers, patch
 * extraction, L2 normalisation. Loops are written so the compiler vectorises them (fixed-width
 * lane accumulators instead of reassociated sums, a branch-free exp).
 * Not for: matrix products (kernels_matmul.c). */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* LANES: accumulator width. ELEMENTWISE_GRAIN: floats per parallel chunk at least, so that
 * small tensors run on the caller alone instead of paying a thread hand-off. */
enum { LANES = 16, ELEMENTWISE_GRAIN = 1 << 15 };

/* e^x for x in float range, branch-free so loops calling it vectorise: 2^n · p(r) with
 * r = x - n·ln2 in [-ln2/2, ln2/2] and a degree-6 Taylor polynomial (rel. error ~2e-7).
 * Inputs below -87 are clamped (results < 2e-38 are not exact). */
static inline float exp_fast(float x) {
    const float shifter = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float t = x * 1.44269504089f + shifter;
    float n = t - shifter;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* ln 2 split so n·hi is exact */
    float p =
        1.0f +
        r * (1.0f +
             r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    int32_t ti, pi;
    memcpy(&ti, &t, 4);
    memcpy(&pi, &p, 4);
    pi += (ti - 0x4b400000) * (1 << 23);
    memcpy(&p, &pi, 4);
    return p;
}

static float sum_f32(const float *x, int n) {
    float lane[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) lane[j] += x[i + j];
    float s = 0;
    for (int j = 0; j < LANES; j++) s += lane[j];
    for (; i < n; i++) s += x[i];
    return s;
}

static float sum_sq_centered(const float *x, float mean, int n) {
    float lane[LANES] = {0};
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) {
            float d = x[i + j] - mean;
            lane[j] += d * d;
        }
    float s = 0;
    for (int j = 0; j < LANES; j++) s += lane[j];
    for (; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return s;
}

static float max_f32(const float *x, int n) {
    float lane[LANES];
    for (int j = 0; j < LANES; j++) lane[j] = -INFINITY;
    int i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    float m = -INFINITY;
    for (int j = 0; j < LANES; j++) m = lane[j] > m ? lane[j] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

void cpu_softmax_row(float *x, int n) {
    float m = max_f32(x, n);
    for (int i = 0; i < n; i++) x[i] = exp_fast(x[i] - m);
    float inv = 1.0f / sum_f32(x, n);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

/* ---- LayerNorm: x, y [rows, dim] ---- */
typedef struct layernorm_job {
    float *y;
    const float *x, *w, *b;
    int dim;
    float eps;
} layernorm_job;

static void layernorm_rows(void *ctx, size_t begin, size_t end, int thread) {
    const layernorm_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->dim;
        float *y = j->y + r * j->dim;
        float mean = sum_f32(x, j->dim) / j->dim;
        float rstd = 1.0f / sqrtf(sum_sq_centered(x, mean, j->dim) / j->dim + j->eps);
        for (int i = 0; i < j->dim; i++) y[i] = (x[i] - mean) * rstd * j->w[i] + j->b[i];
    }
}

void cpu_layernorm(tl_pool *pool, float *y, const float *x, const float *w, const float *b,
                   int rows, int dim, float eps) {
    layernorm_job j = {y, x, w, b, dim, eps};
    tl_pool_for(pool, (size_t)rows, 1 + ELEMENTWISE_GRAIN / (size_t)dim, layernorm_rows, &j);
}

/* ---- element-wise activations and axpy over x[0..n) ---- */
typedef struct elementwise_job {
    float *y;
    const float *x;
    float s;
} elementwise_job;

static void quick_gelu_range(void *ctx, size_t begin, size_t end, int thread) {
    float *x = ((elementwise_job *)ctx)->y;
    for (size_t i = begin; i < end; i++) x[i] = x[i] / (1.0f + exp_fast(-1.702f * x[i]));
}

static void relu_range(void *ctx, size_t begin, size_t end, int thread) {
    float *x = ((elementwise_job *)ctx)->y;
    for (size_t i = begin; i < end; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

static void axpy_range(void *ctx, size_t begin, size_t end, int thread) {
    const elementwise_job *j = ctx;
    for (size_t i = begin; i < end; i++) j->y[i] += j->s * j->x[i];
}

void cpu_quick_gelu(tl_pool *pool, float *x, size_t n) {
    elementwise_job j = {x, NULL, 0};
    tl_pool_for(pool, n, ELEMENTWISE_GRAIN / 2, quick_gelu_range, &j);
}

void cpu_relu(tl_pool *pool, float *x, size_t n) {
    elementwise_job j = {x, NULL, 0};
    tl_pool_for(pool, n, ELEMENTWISE_GRAIN, relu_range, &j);
}

void cpu_axpy(tl_pool *pool, float *y, const float *x, float s, size_t n) {
    elementwise_job j = {y, x, s};
    tl_pool_for(pool, n, ELEMENTWISE_GRAIN, axpy_range, &j);
}

/* ---- softmax over rows of x[rows, n] ---- */
typedef struct softmax_job {
    float *x;
    int n;
} softmax_job;

static void softmax_rows(void *ctx, size_t begin, size_t end, int thread) {
    const softmax_job *j = ctx;
    for (size_t r = begin; r < end; r++) cpu_softmax_row(j->x + r * j->n, j->n);
}

void cpu_softmax(tl_pool *pool, float *x, int rows, int n) {
    softmax_job j = {x, n};
    tl_pool_for(pool, (size_t)rows, 1 + ELEMENTWISE_GRAIN / (size_t)n, softmax_rows, &j);
}

/* ---- L2 normalisation of rows of x[rows, dim] ---- */
static void l2_normalize_rows(void *ctx, size_t begin, size_t end, int thread) {
    const softmax_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        float *x = j->x + r * j->n;
        double ss = 0;
        for (int i = 0; i < j->n; i++) ss += (double)x[i] * x[i];
        if (ss == 0) continue;
        float inv = (float)(1.0 / sqrt(ss));
        for (int i = 0; i < j->n; i++) x[i] *= inv;
    }
}

void cpu_l2_normalize(tl_pool *pool, float *x, int rows, int dim) {
    softmax_job j = {x, dim};
    tl_pool_for(pool, (size_t)rows, 1 + ELEMENTWISE_GRAIN / (size_t)dim, l2_normalize_rows, &j);
}

/* ---- row gathers and periodic row adds: y [n, dim] ---- */
typedef struct rows_job {
    float *y;
    const float *table;
    const int32_t *rows;
    int period, dim;
} rows_job;

static void gather_range(void *ctx, size_t begin, size_t end, int thread) {
    const rows_job *j = ctx;
    for (size_t r = begin; r < end; r++)
        memcpy(j->y + r * j->dim, j->table + (size_t)j->rows[r] * j->dim,
               (size_t)j->dim * sizeof(float));
}

static void add_periodic_range(void *ctx, size_t begin, size_t end, int thread) {
    const rows_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        float *y = j->y + r * j->dim;
        const float *a = j->table + (r % (size_t)j->period) * j->dim;
        for (int i = 0; i < j->dim; i++) y[i] += a[i];
    }
}

void cpu_gather_rows(tl_pool *pool, float *y, const float *table, const int32_t *rows, int n,
                     int dim) {
    rows_job j = {y, table, rows, 1, dim};
    tl_pool_for(pool, (size_t)n, 1 + ELEMENTWISE_GRAIN / (size_t)dim, gather_range, &j);
}

void cpu_add_rows_periodic(tl_pool *pool, float *y, const float *addend, int n, int period,
                           int dim) {
    rows_job j = {y, addend, NULL, period, dim};
    tl_pool_for(pool, (size_t)n, 1 + ELEMENTWISE_GRAIN / (size_t)dim, add_periodic_range, &j);
}

/* ---- conv patches to rows: pixels [B,C,S,S] -> out [B, lead + G*G, C*p*p] ---- */
typedef struct im2col_job {
    float *out;
    const float *pixels;
    int C, S, p, lead;
} im2col_job;

static void im2col_images(void *ctx, size_t begin, size_t end, int thread) {
    const im2col_job *j = ctx;
    int G = j->S / j->p, row_len = j->C * j->p * j->p;
    size_t rows_per_image = (size_t)j->lead + (size_t)G * G;
    for (size_t b = begin; b < end; b++) {
        float *o = j->out + b * rows_per_image * row_len;
        const float *img = j->pixels + b * (size_t)j->C * j->S * j->S;
        memset(o, 0, (size_t)j->lead * row_len * sizeof(float));
        o += (size_t)j->lead * row_len;
        for (int gy = 0; gy < G; gy++)
            for (int gx = 0; gx < G; gx++, o += row_len)
                for (int c = 0; c < j->C; c++)
                    for (int ky = 0; ky < j->p; ky++)
                        memcpy(o + (c * j->p + ky) * j->p,
                               img + ((size_t)c * j->S + gy * j->p + ky) * j->S + gx * j->p,
                               (size_t)j->p * sizeof(float));
    }
}

void cpu_im2col_patches(tl_pool *pool, float *out, const float *pixels, int B, int C, int S, int p,
                        int lead) {
    im2col_job j = {out, pixels, C, S, p, lead};
    tl_pool_for(pool, (size_t)B, 1, im2col_images, &j);
}
