/* The backward operations of the CPU backend against central finite differences of a float64
 * reference forward of each op (h = 1e-6), on random odd shapes, with strides and masks.
 * Each check uses the scalar objective Σ R ⊙ op(inputs) for a random cotangent R. */
#include <stdint.h>
#include <stdlib.h>

#include "backend.h"
#include "harness.h"

static tl_backend *be;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

static void fill(float *x, size_t n, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(urand() * scale);
}

static double *to_f64(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* A float64 objective of the op's inputs (ctx holds every input as float64). */
typedef double (*objective_fn)(void *ctx);

/* Central difference of f with respect to x[i], step h; x is restored. */
static double fd_at(objective_fn f, void *ctx, double *x, size_t i, double h) {
    double keep = x[i];
    x[i] = keep + h;
    double up = f(ctx);
    x[i] = keep - h;
    double down = f(ctx);
    x[i] = keep;
    return (up - down) / (2 * h);
}

/* Checks the float32 gradient g[0..n) (minus `base`, what it held before the op accumulated)
 * against FD of f at every element of x; also that FD with h = 1e-6 agrees with h = 1e-5, so
 * the reference itself is sound. */
static void check_grad(const char *what, objective_fn f, void *ctx, double *x, const float *g,
                       const float *base, size_t n) {
    double max_ref = 0, max_err = 0, max_fd_gap = 0;
    double *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++) {
        ref[i] = fd_at(f, ctx, x, i, 1e-6);
        double coarse = fd_at(f, ctx, x, i, 1e-5);
        max_fd_gap = fmax(max_fd_gap, fabs(coarse - ref[i]));
        max_ref = fmax(max_ref, fabs(ref[i]));
    }
    for (size_t i = 0; i < n; i++)
        max_err = fmax(max_err, fabs((g[i] - (base ? base[i] : 0)) - ref[i]));
    CHECKF(max_ref > 1e-3, "%s: reference gradient is all zero (max %g)", what, max_ref);
    CHECKF(max_fd_gap <= 1e-6 * (1 + max_ref), "%s: FD unstable, h-gap %g", what, max_fd_gap);
    CHECKF(max_err <= 2e-4 * max_ref + 1e-6, "%s: max err %g, max ref %g", what, max_err, max_ref);
    free(ref);
}

/* ---- linear ---- */
typedef struct linear_ctx {
    double *x, *w, *b, *r;
    int M, K, N;
} linear_ctx;

static double linear_obj(void *p) {
    linear_ctx *c = p;
    double s = 0;
    for (int m = 0; m < c->M; m++)
        for (int n = 0; n < c->N; n++) {
            double y = c->b[n];
            for (int k = 0; k < c->K; k++) y += c->x[m * c->K + k] * c->w[n * c->K + k];
            s += c->r[m * c->N + n] * y;
        }
    return s;
}

/* Strided layout: x rows of ldx ≥ K, dy rows of lddy ≥ N, dx rows of lddx ≥ K. */
static void linear_case(int M, int K, int N, int pad) {
    int ldx = K + pad, lddy = N + pad, lddx = K + 2 * pad;
    float *x = calloc((size_t)M * ldx, 4), *w = malloc((size_t)N * K * 4), *b = malloc(N * 4);
    float *dy = calloc((size_t)M * lddy, 4), *dx = malloc((size_t)M * lddx * 4);
    float *dw = malloc((size_t)N * K * 4), *db = malloc(N * 4);
    float *dx0 = malloc((size_t)M * lddx * 4), *dw0 = malloc((size_t)N * K * 4),
          *db0 = malloc(N * 4);
    fill(w, (size_t)N * K, 0.5), fill(b, N, 0.5), fill(dx0, (size_t)M * lddx, 1);
    fill(dw0, (size_t)N * K, 1), fill(db0, N, 1);
    for (int m = 0; m < M; m++) fill(x + m * ldx, K, 1), fill(dy + m * lddy, N, 1);
    memcpy(dx, dx0, (size_t)M * lddx * 4), memcpy(dw, dw0, (size_t)N * K * 4);
    memcpy(db, db0, N * 4);
    be->linear_backward(be, dx, pad ? lddx : 0, dw, db, dy, pad ? lddy : 0, x, pad ? ldx : 0, w, M,
                        K, N);
    linear_ctx c = {malloc((size_t)M * K * 8),
                    to_f64(w, (size_t)N * K),
                    to_f64(b, N),
                    malloc((size_t)M * N * 8),
                    M,
                    K,
                    N};
    float *gx = malloc((size_t)M * K * 4), *gx0 = malloc((size_t)M * K * 4);
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            c.x[m * K + k] = x[m * ldx + k];
            gx[m * K + k] = dx[m * lddx + k], gx0[m * K + k] = dx0[m * lddx + k];
        }
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) c.r[m * N + n] = dy[m * lddy + n];
    check_grad("linear dx", linear_obj, &c, c.x, gx, gx0, (size_t)M * K);
    check_grad("linear dw", linear_obj, &c, c.w, dw, dw0, (size_t)N * K);
    check_grad("linear db", linear_obj, &c, c.b, db, db0, N);
    /* padding columns of dx stay as they were */
    for (int m = 0; m < M; m++)
        for (int k = K; k < lddx && pad; k++) CHECK(dx[m * lddx + k] == dx0[m * lddx + k]);
    free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db), free(dx0), free(dw0);
    free(db0), free(gx), free(gx0), free(c.x), free(c.w), free(c.b), free(c.r);
}

TEST(linear_backward_dense_and_strided) {
    linear_case(7, 13, 5, 0);
    linear_case(37, 11, 19, 3); /* more than one 16-row block of dx and dw */
}

TEST(linear_backward_null_outputs) {
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, dy[4] = {1, -1, 0.5f, 2};
    float dw[6] = {0}, db[2] = {0};
    be->linear_backward(be, NULL, 0, dw, NULL, dy, 0, x, 0, w, 2, 3, 2);
    be->linear_backward(be, NULL, 0, NULL, db, dy, 0, x, 0, w, 2, 3, 2);
    CHECK_NEAR(dw[0], 1 * 1 + 0.5 * 4, 1e-6); /* Σ_m dy[m,0]·x[m,0] */
    CHECK_NEAR(db[1], -1 + 2, 1e-6);
}

/* ---- layernorm ---- */
typedef struct ln_ctx {
    double *x, *w, *b, *r;
    int rows, dim;
} ln_ctx;

static double ln_obj(void *p) {
    ln_ctx *c = p;
    double s = 0;
    for (int r = 0; r < c->rows; r++) {
        const double *x = c->x + r * c->dim;
        double mean = 0, var = 0;
        for (int i = 0; i < c->dim; i++) mean += x[i];
        mean /= c->dim;
        for (int i = 0; i < c->dim; i++) var += (x[i] - mean) * (x[i] - mean);
        double rstd = 1 / sqrt(var / c->dim + 1e-5);
        for (int i = 0; i < c->dim; i++)
            s += c->r[r * c->dim + i] * ((x[i] - mean) * rstd * c->w[i] + c->b[i]);
    }
    return s;
}

TEST(layernorm_backward) {
    int rows = 5, dim = 19;
    size_t n = (size_t)rows * dim;
    float *x = malloc(n * 4), *dy = malloc(n * 4), *dx = calloc(n, 4), w[19], b[19];
    float dw[19] = {0}, db[19] = {0};
    fill(x, n, 2), fill(dy, n, 1), fill(w, dim, 1), fill(b, dim, 1);
    for (size_t i = 0; i < n; i++) x[i] += 0.7f; /* a non-zero mean */
    be->layernorm_backward(be, dx, dw, db, dy, x, w, rows, dim, 1e-5f);
    ln_ctx c = {to_f64(x, n), to_f64(w, dim), to_f64(b, dim), to_f64(dy, n), rows, dim};
    check_grad("layernorm dx", ln_obj, &c, c.x, dx, NULL, n);
    check_grad("layernorm dw", ln_obj, &c, c.w, dw, NULL, dim);
    check_grad("layernorm db", ln_obj, &c, c.b, db, NULL, dim);
    free(x), free(dy), free(dx), free(c.x), free(c.w), free(c.b), free(c.r);
}

/* ---- element-wise activations ---- */
typedef struct act_ctx {
    double *x, *r;
    int n, relu;
} act_ctx;

static double act_obj(void *p) {
    act_ctx *c = p;
    double s = 0;
    for (int i = 0; i < c->n; i++) {
        double x = c->x[i];
        double y = c->relu ? (x > 0 ? x : 0) : x / (1 + exp(-1.702 * x));
        s += c->r[i] * y;
    }
    return s;
}

TEST(activation_backward) {
    enum { N = 41 };
    float x[N], dy[N], dx[N] = {0}, dr[N] = {0};
    fill(x, N, 4), fill(dy, N, 1);
    for (int i = 0; i < N; i++)
        if (fabsf(x[i]) < 0.05f) x[i] = 0.3f; /* keep relu's kink away from FD steps */
    be->quick_gelu_backward(be, dx, dy, x, N);
    be->relu_backward(be, dr, dy, x, N);
    act_ctx c = {to_f64(x, N), to_f64(dy, N), N, 0};
    check_grad("quick_gelu", act_obj, &c, c.x, dx, NULL, N);
    c.relu = 1;
    check_grad("relu", act_obj, &c, c.x, dr, NULL, N);
    free(c.x), free(c.r);
}

/* ---- softmax ---- */
typedef struct softmax_ctx {
    double *x, *r;
    int rows, n;
} softmax_ctx;

static double softmax_obj(void *p) {
    softmax_ctx *c = p;
    double s = 0;
    for (int r = 0; r < c->rows; r++) {
        const double *x = c->x + r * c->n;
        double m = x[0], z = 0;
        for (int i = 1; i < c->n; i++) m = fmax(m, x[i]);
        for (int i = 0; i < c->n; i++) z += exp(x[i] - m);
        for (int i = 0; i < c->n; i++) s += c->r[r * c->n + i] * exp(x[i] - m) / z;
    }
    return s;
}

TEST(softmax_backward) {
    enum { R = 4, N = 11 };
    float x[R * N], p[R * N], dy[R * N], dx[R * N] = {0};
    fill(x, R * N, 3), fill(dy, R * N, 1);
    memcpy(p, x, sizeof p);
    be->softmax(be, p, R, N);
    be->softmax_backward(be, dx, dy, p, R, N);
    softmax_ctx c = {to_f64(x, R * N), to_f64(dy, R * N), R, N};
    check_grad("softmax", softmax_obj, &c, c.x, dx, NULL, R * N);
    free(c.x), free(c.r);
}

/* ---- attention ---- */
typedef struct attn_ctx {
    double *q, *k, *v, *r; /* q [B,Tq,ldq], k/v [B,Tk,ldkv], r [B,Tq,H*hd] */
    int B, Tq, Tk, H, hd, ldq, ldkv, causal;
    const int *key_len;
} attn_ctx;

static double attn_obj(void *p) {
    attn_ctx *c = p;
    double s = 0, sc[64];
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Tq; i++) {
                int keys = c->key_len ? c->key_len[b] : c->Tk;
                if (c->causal && i + 1 < keys) keys = i + 1;
                if (keys <= 0) continue; /* no visible key: output 0 */
                const double *q = c->q + ((size_t)b * c->Tq + i) * c->ldq + h * c->hd;
                double m = -1e300, z = 0;
                for (int j = 0; j < keys; j++) {
                    const double *k = c->k + ((size_t)b * c->Tk + j) * c->ldkv + h * c->hd;
                    sc[j] = 0;
                    for (int d = 0; d < c->hd; d++) sc[j] += q[d] * k[d];
                    sc[j] /= sqrt(c->hd);
                    m = fmax(m, sc[j]);
                }
                for (int j = 0; j < keys; j++) z += (sc[j] = exp(sc[j] - m));
                for (int d = 0; d < c->hd; d++) {
                    double o = 0;
                    for (int j = 0; j < keys; j++)
                        o += sc[j] / z * c->v[((size_t)b * c->Tk + j) * c->ldkv + h * c->hd + d];
                    s += o * c->r[((size_t)b * c->Tq + i) * c->H * c->hd + h * c->hd + d];
                }
            }
    return s;
}

/* q is a column slice of a wider buffer (ldq = H·hd + 3); k and v share one buffer
 * [B,Tk,2·H·hd] as in a fused K|V projection. */
static void attention_case(int B, int Tq, int Tk, int H, int hd, int causal, const int *key_len) {
    int D = H * hd, ldq = D + 3, ldkv = 2 * D;
    size_t nq = (size_t)B * Tq * ldq, nkv = (size_t)B * Tk * ldkv, no = (size_t)B * Tq * D;
    float *q = malloc(nq * 4), *kv = malloc(nkv * 4), *dout = malloc(no * 4), *out = malloc(no * 4);
    float *probs = malloc((size_t)B * H * Tq * Tk * 4), *dq = calloc(nq, 4), *dkv = calloc(nkv, 4);
    fill(q, nq, 1.5), fill(kv, nkv, 1.5), fill(dout, no, 1);
    be->attention(be, out, q, ldq, kv, kv + D, ldkv, B, Tq, Tk, H, hd, causal, key_len, probs);
    be->attention_backward(be, dq, dkv, dkv + D, dout, q, ldq, kv, kv + D, ldkv, probs, B, Tq, Tk,
                           H, hd);
    double *kv64 = to_f64(kv, nkv);
    attn_ctx c = {to_f64(q, nq), kv64, kv64 + D, to_f64(dout, no), B, Tq, Tk, H, hd,
                  ldq,           ldkv, causal,   key_len};
    check_grad("attention dq", attn_obj, &c, c.q, dq, NULL, nq);
    check_grad("attention dk|dv", attn_obj, &c, kv64, dkv, NULL, nkv);
    for (int b = 0; b < B; b++) /* keys past key_len get no gradient at all */
        for (int j = key_len ? key_len[b] : Tk; j < Tk; j++)
            for (int d = 0; d < 2 * D; d++) CHECK(dkv[((size_t)b * Tk + j) * ldkv + d] == 0);
    free(q), free(kv), free(dout), free(out), free(probs), free(dq), free(dkv), free(c.q);
    free(kv64), free(c.r);
}

TEST(attention_backward_cross_with_key_len) {
    int key_len[3] = {7, 3, 0}; /* full, padded, and no visible key at all */
    attention_case(3, 5, 7, 3, 4, 0, key_len);
}

TEST(attention_backward_causal_self) {
    attention_case(2, 6, 6, 2, 5, 1, NULL);
    int key_len[2] = {4, 6};
    attention_case(2, 6, 6, 2, 3, 1, key_len);
}

/* ---- cross-entropies ---- */
typedef struct ce_ctx {
    double *z, *q;
    const int *y;
    int rows, n;
} ce_ctx;

static double ce_obj(void *p) {
    ce_ctx *c = p;
    double s = 0;
    for (int r = 0; r < c->rows; r++) {
        const double *z = c->z + r * c->n;
        double m = z[0];
        for (int i = 1; i < c->n; i++) m = fmax(m, z[i]);
        double sum = exp(z[0] - m);
        for (int i = 1; i < c->n; i++) sum += exp(z[i] - m);
        double lse = m + log(sum);
        if (c->q)
            for (int i = 0; i < c->n; i++) s += c->q[r * c->n + i] * (lse - z[i]);
        else if (c->y[r] >= 0)
            s += lse - z[c->y[r]];
    }
    return s;
}

TEST(cross_entropy_values_and_backward) {
    enum { R = 5, N = 9 };
    int y[R] = {3, -1, 0, 8, 3};
    float z[R * N], dz[R * N] = {0}, loss[R];
    fill(z, R * N, 4);
    be->cross_entropy(be, loss, z, y, R, N);
    be->cross_entropy_backward(be, dz, z, y, 1.0f, R, N);
    ce_ctx c = {to_f64(z, R * N), NULL, y, R, N};
    double total = 0;
    for (int r = 0; r < R; r++) total += loss[r];
    CHECK_NEAR(total, ce_obj(&c), 1e-5);
    CHECK(loss[1] == 0);
    for (int i = 0; i < N; i++) CHECK(dz[N + i] == 0); /* ignored row */
    check_grad("cross_entropy", ce_obj, &c, c.z, dz, NULL, R * N);
    free(c.z);
}

TEST(soft_cross_entropy_values_and_backward) {
    enum { R = 3, N = 7 };
    float z[R * N], q[R * N], dz[R * N] = {0}, loss[R];
    fill(z, R * N, 3);
    for (int i = 0; i < R * N; i++) q[i] = (float)(0.6 + 0.4 * urand()); /* mass ≠ 1 too */
    be->soft_cross_entropy(be, loss, z, q, R, N);
    be->soft_cross_entropy_backward(be, dz, z, q, 1.0f, R, N);
    ce_ctx c = {to_f64(z, R * N), to_f64(q, R * N), NULL, R, N};
    CHECK_NEAR(loss[0] + loss[1] + loss[2], ce_obj(&c), 1e-5);
    check_grad("soft_cross_entropy", ce_obj, &c, c.z, dz, NULL, R * N);
    free(c.z), free(c.q);
}

/* ---- gathers and periodic adds, l2 normalisation ---- */
typedef struct rows_ctx {
    double *table, *r;
    const int32_t *rows;
    int n, period, dim;
} rows_ctx;

static double rows_obj(void *p) {
    rows_ctx *c = p;
    double s = 0;
    for (int i = 0; i < c->n; i++) {
        const double *t = c->table + (size_t)(c->rows ? c->rows[i] : i % c->period) * c->dim;
        for (int d = 0; d < c->dim; d++) s += c->r[i * c->dim + d] * t[d];
    }
    return s;
}

TEST(scatter_and_periodic_rows) {
    enum { V = 6, N = 9, D = 5 };
    int32_t rows[N] = {2, 0, 2, 5, 1, 2, 0, 4, 5};
    float table[V * D], dy[N * D], dt[V * D] = {0}, dp[3 * D] = {0};
    fill(table, V * D, 1), fill(dy, N * D, 1);
    be->scatter_add_rows(be, dt, dy, rows, N, D);
    be->sum_rows_periodic(be, dp, dy, N, 3, D);
    rows_ctx c = {to_f64(table, V * D), to_f64(dy, N * D), rows, N, 1, D};
    check_grad("scatter_add_rows", rows_obj, &c, c.table, dt, NULL, V * D);
    for (int d = 0; d < D; d++) CHECK(dt[3 * D + d] == 0); /* row 3 never gathered */
    c.rows = NULL, c.period = 3;
    check_grad("sum_rows_periodic", rows_obj, &c, c.table, dp, NULL, 3 * D);
    free(c.table), free(c.r);
}

static double l2_obj(void *p) {
    rows_ctx *c = p;
    double s = 0;
    for (int i = 0; i < c->n; i++) {
        const double *x = c->table + i * c->dim;
        double ss = 0;
        for (int d = 0; d < c->dim; d++) ss += x[d] * x[d];
        for (int d = 0; d < c->dim; d++) s += c->r[i * c->dim + d] * x[d] / sqrt(ss);
    }
    return s;
}

TEST(l2_normalize_backward) {
    enum { R = 4, D = 13 };
    float x[R * D], dy[R * D], dx[R * D] = {0};
    fill(x, R * D, 2), fill(dy, R * D, 1);
    be->l2_normalize_backward(be, dx, dy, x, R, D);
    rows_ctx c = {to_f64(x, R * D), to_f64(dy, R * D), NULL, R, 1, D};
    check_grad("l2_normalize", l2_obj, &c, c.table, dx, NULL, R * D);
    float zero[D] = {0}, dz[D] = {0};
    be->l2_normalize_backward(be, dz, dy, zero, 1, D);
    for (int d = 0; d < D; d++) CHECK(dz[d] == 0);
    free(c.table), free(c.r);
}

/* ---- the thread pool's splits give the serial results ---- */

/* Runs every row-split backward on shapes large enough for several chunks, on a 1-thread and
 * a 4-thread backend, and compares (sgemm blocking may reorder sums: near, not equal). */
TEST(parallel_splits_match_serial) {
    tl_backend *serial, *wide;
    tl_error err;
    REQUIRE(tl_backend_cpu_create(&serial, 1, &err) == TL_OK);
    REQUIRE(tl_backend_cpu_create(&wide, 4, &err) == TL_OK);
    enum { M = 515, K = 67, N = 131, B = 3, T = 77, H = 4, HD = 16 };
    size_t nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N;
    size_t nq = (size_t)B * T * H * HD, np = (size_t)B * H * T * T;
    float *x = malloc(nx * 4), *w = malloc(nw * 4), *dy = malloc(ny * 4), *q = malloc(nq * 4);
    float *kv = malloc(2 * nq * 4), *dout = malloc(nq * 4), *out = malloc(nq * 4);
    float *probs = malloc(np * 4), *lnw = malloc(K * 4);
    fill(x, nx, 1), fill(w, nw, 1), fill(dy, ny, 1), fill(q, nq, 1), fill(kv, 2 * nq, 1);
    fill(dout, nq, 1), fill(lnw, K, 1);
    int32_t rows[M];
    for (int i = 0; i < M; i++) rows[i] = (i * 7) % 50;
    be->attention(be, out, q, H * HD, kv, kv + H * HD, 2 * H * HD, B, T, T, H, HD, 1, NULL, probs);
    size_t sizes[5] = {nx + nw + N, 3 * nq, nx + 2 * K, (size_t)50 * K, nx};
    float *res[2][5];
    tl_backend *bes[2] = {serial, wide};
    for (int r = 0; r < 2; r++) {
        tl_backend *b = bes[r];
        for (int i = 0; i < 5; i++) res[r][i] = calloc(sizes[i], 4);
        float *g = res[r][0], *a = res[r][1], *l = res[r][2];
        b->linear_backward(b, g, 0, g + nx, g + nx + nw, dy, 0, x, 0, w, M, K, N);
        b->attention_backward(b, a, a + nq, a + nq + H * HD, dout, q, H * HD, kv, kv + H * HD,
                              2 * H * HD, probs, B, T, T, H, HD);
        b->layernorm_backward(b, l, l + nx, l + nx + K, x, x, lnw, M, K, 1e-5f);
        b->scatter_add_rows(b, res[r][3], x, rows, M, K);
        b->quick_gelu_backward(b, res[r][4], x, dy, nx);
    }
    const char *names[5] = {"linear", "attention", "layernorm", "scatter", "quick_gelu"};
    for (int i = 0; i < 5; i++) {
        double worst = 0, scale = 0;
        for (size_t j = 0; j < sizes[i]; j++) {
            worst = fmax(worst, fabs(res[0][i][j] - res[1][i][j]));
            scale = fmax(scale, fabs(res[0][i][j]));
        }
        CHECKF(scale > 0 && worst <= 1e-5 * scale, "%s: 1 vs 4 threads differ by %g (scale %g)",
               names[i], worst, scale);
        free(res[0][i]), free(res[1][i]);
    }
    free(x), free(w), free(dy), free(q), free(kv), free(dout), free(out), free(probs), free(lnw);
    serial->destroy(serial);
    wide->destroy(wide);
}

int main(void) {
    tl_error err;
    if (tl_backend_cpu_create(&be, 2, &err)) {
        printf("Bail out! %s\n", err.message);
        return 1;
    }
    RUN(linear_backward_dense_and_strided);
    RUN(linear_backward_null_outputs);
    RUN(layernorm_backward);
    RUN(activation_backward);
    RUN(softmax_backward);
    RUN(attention_backward_cross_with_key_len);
    RUN(attention_backward_causal_self);
    RUN(cross_entropy_values_and_backward);
    RUN(soft_cross_entropy_values_and_backward);
    RUN(scatter_and_periodic_rows);
    RUN(l2_normalize_backward);
    RUN(parallel_splits_match_serial);
    be->destroy(be);
    return th_done();
}
