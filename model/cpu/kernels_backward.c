/* Backward CPU kernels for training: Linear, LayerNorm, activations, softmax, attention from
 * saved probabilities, cross-entropies, and the scatters that undo gathers and row adds.
 * Every kernel accumulates into its gradients. Not for: forward kernels (kernels_*.c). */
#include "kernels_backward.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

/* ROW_BLOCK: rows per parallel item of the matrix kernels; GRAIN: floats per chunk at least. */
enum { ROW_BLOCK = 16, GRAIN = 1 << 14 };

static size_t grain_rows(int row_floats) {
    return 1 + GRAIN / (size_t)(row_floats > 0 ? row_floats : 1);
}

/* ---- Linear: y[M,N] = x[M,K]·w[N,K]ᵀ + b ---- */
typedef struct linear_bwd_job {
    float *dx, *dw, *db;
    const float *dy, *x, *w;
    int lddx, lddy, ldx, M, K, N;
} linear_bwd_job;

/* dx rows [16·begin, 16·end): dx += dy·w. */
static void linear_bwd_dx(void *ctx, size_t begin, size_t end, int thread) {
    const linear_bwd_job *j = ctx;
    int m0 = (int)begin * ROW_BLOCK, m1 = (int)end * ROW_BLOCK;
    if (m1 > j->M) m1 = j->M;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, j->K, j->N, 1.0f,
                j->dy + (size_t)m0 * j->lddy, j->lddy, j->w, j->K, 1.0f,
                j->dx + (size_t)m0 * j->lddx, j->lddx);
}

/* dw, db rows [16·begin, 16·end): dw += dyᵀ·x, db += column sums of dy. */
static void linear_bwd_dw(void *ctx, size_t begin, size_t end, int thread) {
    const linear_bwd_job *j = ctx;
    int n0 = (int)begin * ROW_BLOCK, n1 = (int)end * ROW_BLOCK;
    if (n1 > j->N) n1 = j->N;
    if (j->dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n1 - n0, j->K, j->M, 1.0f, j->dy + n0,
                    j->lddy, j->x, j->ldx, 1.0f, j->dw + (size_t)n0 * j->K, j->K);
    if (j->db)
        for (int m = 0; m < j->M; m++) {
            const float *dy = j->dy + (size_t)m * j->lddy;
            for (int n = n0; n < n1; n++) j->db[n] += dy[n];
        }
}

void cpu_linear_backward(tl_pool *pool, float *dx, int lddx, float *dw, float *db, const float *dy,
                         int lddy, const float *x, int ldx, const float *w, int M, int K, int N) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    linear_bwd_job j = {dx, dw, db, dy, x, w, lddx ? lddx : K, lddy ? lddy : N, ldx ? ldx : K,
                        M,  K,  N};
    size_t per_item = (size_t)ROW_BLOCK * K * N;
    size_t grain = per_item < GRAIN * 8 ? 1 + GRAIN * 8 / per_item : 1;
    if (dx) tl_pool_for(pool, (size_t)(M + ROW_BLOCK - 1) / ROW_BLOCK, grain, linear_bwd_dx, &j);
    per_item = (size_t)ROW_BLOCK * K * M;
    grain = per_item < GRAIN * 8 ? 1 + GRAIN * 8 / per_item : 1;
    if (dw || db)
        tl_pool_for(pool, (size_t)(N + ROW_BLOCK - 1) / ROW_BLOCK, grain, linear_bwd_dw, &j);
}

/* ---- LayerNorm ---- */
typedef struct layernorm_bwd_job {
    float *dx, *dw, *db;
    const float *dy, *x, *w;
    int dim;
    float eps;
} layernorm_bwd_job;

/* Mean and reciprocal standard deviation of x[0..n) (biased variance), in double. */
static void row_stats(const float *x, int n, float eps, float *mean, float *rstd) {
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double m = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
    *mean = (float)m;
    *rstd = (float)(1.0 / sqrt(ss / n + eps));
}

/* dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), g = dy ⊙ w. */
static void layernorm_bwd_rows(void *ctx, size_t begin, size_t end, int thread) {
    const layernorm_bwd_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->dim, *dy = j->dy + r * j->dim;
        float *dx = j->dx + r * j->dim, mean, rstd;
        row_stats(x, j->dim, j->eps, &mean, &rstd);
        double g_mean = 0, gx_mean = 0;
        for (int i = 0; i < j->dim; i++) {
            float g = dy[i] * j->w[i];
            g_mean += g;
            gx_mean += g * (x[i] - mean) * rstd;
        }
        g_mean /= j->dim;
        gx_mean /= j->dim;
        for (int i = 0; i < j->dim; i++) {
            float xhat = (x[i] - mean) * rstd;
            dx[i] += rstd * (dy[i] * j->w[i] - (float)g_mean - xhat * (float)gx_mean);
        }
    }
}

/* dw += Σ_rows dy·x̂, db += Σ_rows dy for rows [begin, end) (run on one thread). */
static void layernorm_bwd_params(void *ctx, size_t begin, size_t end, int thread) {
    const layernorm_bwd_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->dim, *dy = j->dy + r * j->dim;
        float mean, rstd;
        row_stats(x, j->dim, j->eps, &mean, &rstd);
        for (int i = 0; i < j->dim; i++) {
            if (j->dw) j->dw[i] += dy[i] * (x[i] - mean) * rstd;
            if (j->db) j->db[i] += dy[i];
        }
    }
}

void cpu_layernorm_backward(tl_pool *pool, float *dx, float *dw, float *db, const float *dy,
                            const float *x, const float *w, int rows, int dim, float eps) {
    if (rows <= 0) return;
    layernorm_bwd_job j = {dx, dw, db, dy, x, w, dim, eps};
    if (dx) tl_pool_for(pool, (size_t)rows, grain_rows(dim), layernorm_bwd_rows, &j);
    if (dw || db) layernorm_bwd_params(&j, 0, (size_t)rows, 0);
}

/* ---- element-wise activations ---- */
typedef struct elementwise_bwd_job {
    float *dx;
    const float *dy, *x;
} elementwise_bwd_job;

static void quick_gelu_bwd_range(void *ctx, size_t begin, size_t end, int thread) {
    const elementwise_bwd_job *j = ctx;
    for (size_t i = begin; i < end; i++) {
        float s = 1.0f / (1.0f + expf(-1.702f * j->x[i]));
        j->dx[i] += j->dy[i] * (s + 1.702f * j->x[i] * s * (1.0f - s));
    }
}

static void relu_bwd_range(void *ctx, size_t begin, size_t end, int thread) {
    const elementwise_bwd_job *j = ctx;
    for (size_t i = begin; i < end; i++)
        if (j->x[i] > 0) j->dx[i] += j->dy[i];
}

void cpu_quick_gelu_backward(tl_pool *pool, float *dx, const float *dy, const float *x, size_t n) {
    elementwise_bwd_job j = {dx, dy, x};
    tl_pool_for(pool, n, GRAIN, quick_gelu_bwd_range, &j);
}

void cpu_relu_backward(tl_pool *pool, float *dx, const float *dy, const float *y, size_t n) {
    elementwise_bwd_job j = {dx, dy, y};
    tl_pool_for(pool, n, GRAIN, relu_bwd_range, &j);
}

/* ---- softmax from saved probabilities ---- */
typedef struct softmax_bwd_job {
    float *dx;
    const float *dy, *p;
    int n;
} softmax_bwd_job;

/* dx[0..n) += p ⊙ (dy − Σ dy·p). */
static void softmax_bwd_row(float *dx, const float *dy, const float *p, int n) {
    double dot = 0;
    for (int i = 0; i < n; i++) dot += (double)dy[i] * p[i];
    for (int i = 0; i < n; i++) dx[i] += p[i] * (dy[i] - (float)dot);
}

static void softmax_bwd_rows(void *ctx, size_t begin, size_t end, int thread) {
    const softmax_bwd_job *j = ctx;
    for (size_t r = begin; r < end; r++)
        softmax_bwd_row(j->dx + r * j->n, j->dy + r * j->n, j->p + r * j->n, j->n);
}

void cpu_softmax_backward(tl_pool *pool, float *dx, const float *dy, const float *p, int rows,
                          int n) {
    softmax_bwd_job j = {dx, dy, p, n};
    tl_pool_for(pool, (size_t)rows, grain_rows(n), softmax_bwd_rows, &j);
}

/* ---- attention from saved probabilities: one item per (batch, head) ---- */
typedef struct attention_bwd_job {
    float *scratch, *dq, *dk, *dv;
    const float *dout, *q, *k, *v, *probs;
    int ldq, ldkv, Tq, Tk, H, hd;
} attention_bwd_job;

/* Query rows [i0, i0+rows) of (b, h); dp: rows × Tk scratch. With O = P·V and S the scaled
 * scores: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), dQ += c·dS·K, dK += c·dSᵀ·Q. */
static void attention_bwd_tile(const attention_bwd_job *j, int b, int h, int i0, int rows,
                               float *dp) {
    int Tk = j->Tk, hd = j->hd, ldo = j->H * hd;
    float c = 1.0f / sqrtf((float)hd);
    const float *p = j->probs + (((size_t)b * j->H + h) * j->Tq + i0) * Tk;
    const float *dout = j->dout + ((size_t)b * j->Tq + i0) * ldo + h * hd;
    const float *q = j->q + ((size_t)b * j->Tq + i0) * j->ldq + h * hd;
    size_t kv = (size_t)b * Tk * j->ldkv + h * hd;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, rows, 1.0f, p, Tk, dout, ldo, 1.0f,
                j->dv + kv, j->ldkv);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, Tk, hd, 1.0f, dout, ldo, j->v + kv,
                j->ldkv, 0.0f, dp, Tk);
    for (int i = 0; i < rows; i++) {
        float *row = dp + (size_t)i * Tk;
        const float *pr = p + (size_t)i * Tk;
        double dot = 0;
        for (int t = 0; t < Tk; t++) dot += (double)row[t] * pr[t];
        for (int t = 0; t < Tk; t++) row[t] = pr[t] * (row[t] - (float)dot);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hd, Tk, c, dp, Tk, j->k + kv,
                j->ldkv, 1.0f, j->dq + ((size_t)b * j->Tq + i0) * j->ldq + h * hd, j->ldq);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hd, rows, c, dp, Tk, q, j->ldq, 1.0f,
                j->dk + kv, j->ldkv);
}

static void attention_bwd_heads(void *ctx, size_t begin, size_t end, int thread) {
    const attention_bwd_job *j = ctx;
    int tile = CPU_ATTENTION_SCRATCH_FLOATS / j->Tk;
    float *dp = j->scratch + (size_t)thread * CPU_ATTENTION_SCRATCH_FLOATS;
    for (size_t item = begin; item < end; item++) {
        int b = (int)(item / (size_t)j->H), h = (int)(item % (size_t)j->H);
        for (int i0 = 0; i0 < j->Tq; i0 += tile)
            attention_bwd_tile(j, b, h, i0, j->Tq - i0 < tile ? j->Tq - i0 : tile, dp);
    }
}

void cpu_attention_backward(tl_pool *pool, float *scratch, float *dq, float *dk, float *dv,
                            const float *dout, const float *q, int ldq, const float *k,
                            const float *v, int ldkv, const float *probs, int B, int Tq, int Tk,
                            int H, int hd) {
    if (B <= 0 || Tq <= 0 || Tk <= 0) return;
    attention_bwd_job j = {scratch, dq, dk, dv, dout, q, k, v, probs, ldq, ldkv, Tq, Tk, H, hd};
    double flops = 8.0 * Tq * Tk * hd;
    size_t grain = flops < GRAIN * 64.0 ? (size_t)(GRAIN * 64.0 / flops) : 1;
    tl_pool_for(pool, (size_t)B * H, grain, attention_bwd_heads, &j);
}

/* ---- cross-entropies with logits ---- */
typedef struct ce_job {
    float *out;
    const float *logits, *q;
    const int *labels;
    float scale;
    int n;
} ce_job;

/* log Σ exp(x[0..n)), in double. */
static double log_sum_exp(const float *x, int n) {
    if (n <= 0) return -INFINITY;
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = exp((double)x[0] - m); /* ≥ 1 once the max is reached */
    for (int i = 1; i < n; i++) s += exp((double)x[i] - m);
    return m + log(s);
}

static void ce_rows(void *ctx, size_t begin, size_t end, int thread) {
    const ce_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        const float *z = j->logits + r * j->n;
        int y = j->labels[r];
        j->out[r] = y < 0 ? 0.0f : (float)(log_sum_exp(z, j->n) - z[y]);
    }
}

static void soft_ce_rows(void *ctx, size_t begin, size_t end, int thread) {
    const ce_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        const float *z = j->logits + r * j->n, *q = j->q + r * j->n;
        double lse = log_sum_exp(z, j->n), loss = 0;
        for (int i = 0; i < j->n; i++) loss += q[i] * (lse - z[i]);
        j->out[r] = (float)loss;
    }
}

/* out[0..n) += scale · (softmax(z) · mass − target), target = onehot(y) or q. */
static void ce_bwd_row(float *out, const float *z, int n, int y, const float *q, float scale) {
    double lse = log_sum_exp(z, n), mass = 1;
    if (q) {
        mass = 0;
        for (int i = 0; i < n; i++) mass += q[i];
    }
    for (int i = 0; i < n; i++) {
        double target = q ? q[i] : (i == y ? 1.0 : 0.0);
        out[i] += scale * (float)(exp(z[i] - lse) * mass - target);
    }
}

static void ce_bwd_rows(void *ctx, size_t begin, size_t end, int thread) {
    const ce_job *j = ctx;
    for (size_t r = begin; r < end; r++) {
        if (!j->q && j->labels[r] < 0) continue;
        ce_bwd_row(j->out + r * j->n, j->logits + r * j->n, j->n, j->q ? -1 : j->labels[r],
                   j->q ? j->q + r * j->n : NULL, j->scale);
    }
}

void cpu_cross_entropy(tl_pool *pool, float *loss, const float *logits, const int *labels, int rows,
                       int n) {
    ce_job j = {loss, logits, NULL, labels, 1.0f, n};
    tl_pool_for(pool, (size_t)rows, grain_rows(n), ce_rows, &j);
}

void cpu_cross_entropy_backward(tl_pool *pool, float *dlogits, const float *logits,
                                const int *labels, float scale, int rows, int n) {
    ce_job j = {dlogits, logits, NULL, labels, scale, n};
    tl_pool_for(pool, (size_t)rows, grain_rows(n), ce_bwd_rows, &j);
}

void cpu_soft_cross_entropy(tl_pool *pool, float *loss, const float *logits, const float *q,
                            int rows, int n) {
    ce_job j = {loss, logits, q, NULL, 1.0f, n};
    tl_pool_for(pool, (size_t)rows, grain_rows(n), soft_ce_rows, &j);
}

void cpu_soft_cross_entropy_backward(tl_pool *pool, float *dlogits, const float *logits,
                                     const float *q, float scale, int rows, int n) {
    ce_job j = {dlogits, logits, q, NULL, scale, n};
    tl_pool_for(pool, (size_t)rows, grain_rows(n), ce_bwd_rows, &j);
}

/* ---- scatters: the backward of gather_rows and add_rows_periodic ---- */
typedef struct scatter_job {
    float *dst;
    const float *dy;
    const int32_t *rows;
    int n, period, dim;
} scatter_job;

/* Columns [begin, end) of every row, so threads never write the same float. */
static void scatter_columns(void *ctx, size_t begin, size_t end, int thread) {
    const scatter_job *j = ctx;
    for (int i = 0; i < j->n; i++) {
        float *d = j->dst + (size_t)j->rows[i] * j->dim;
        const float *s = j->dy + (size_t)i * j->dim;
        for (size_t c = begin; c < end; c++) d[c] += s[c];
    }
}

/* Addend rows [begin, end): each sums every period-th row of dy. */
static void periodic_rows(void *ctx, size_t begin, size_t end, int thread) {
    const scatter_job *j = ctx;
    for (size_t p = begin; p < end; p++) {
        float *d = j->dst + p * j->dim;
        for (size_t i = p; i < (size_t)j->n; i += (size_t)j->period) {
            const float *s = j->dy + i * j->dim;
            for (int c = 0; c < j->dim; c++) d[c] += s[c];
        }
    }
}

void cpu_scatter_add_rows(tl_pool *pool, float *dtable, const float *dy, const int32_t *rows, int n,
                          int dim) {
    scatter_job j = {dtable, dy, rows, n, 1, dim};
    tl_pool_for(pool, (size_t)dim, 1 + GRAIN / (size_t)(n > 0 ? n : 1), scatter_columns, &j);
}

void cpu_sum_rows_periodic(tl_pool *pool, float *daddend, const float *dy, int n, int period,
                           int dim) {
    scatter_job j = {daddend, dy, NULL, n, period, dim};
    size_t per_row = (size_t)dim * (size_t)(n / (period > 0 ? period : 1) + 1);
    tl_pool_for(pool, (size_t)period, 1 + GRAIN / per_row, periodic_rows, &j);
}

/* ---- L2 normalisation ---- */
static void l2_normalize_bwd_rows(void *ctx, size_t begin, size_t end, int thread) {
    const softmax_bwd_job *j = ctx; /* dx, dy, p = x, n = dim */
    for (size_t r = begin; r < end; r++) {
        const float *x = j->p + r * j->n, *dy = j->dy + r * j->n;
        double ss = 0, dot = 0;
        for (int i = 0; i < j->n; i++) {
            ss += (double)x[i] * x[i];
            dot += (double)x[i] * dy[i];
        }
        if (ss == 0) continue;
        double inv = 1.0 / sqrt(ss);
        for (int i = 0; i < j->n; i++)
            j->dx[r * j->n + i] += (float)((dy[i] - x[i] * inv * dot * inv) * inv);
    }
}

void cpu_l2_normalize_backward(tl_pool *pool, float *dx, const float *dy, const float *x, int rows,
                               int dim) {
    softmax_bwd_job j = {dx, dy, x, dim};
    tl_pool_for(pool, (size_t)rows, grain_rows(dim), l2_normalize_bwd_rows, &j);
}
