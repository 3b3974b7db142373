/* The CPU backend's operations against naive double-precision references on random inputs
 * (odd sizes, row strides, masks, probabilities), with 1 and 3 threads; linear_reproducible's
 * rows independent of their batch; and the thread pool. */
#include <cblas.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "../harness.h"
#include "backend.h"
#include "cpu/threadpool.h"

#include "test_random.h"

static float *copy_array(const float *x, size_t n) {
    float *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

static tl_backend *backends[2];
static const int backend_threads[2] = {1, 3};

/* ---- linear and linear_reproducible ---- */
typedef void (*linear_op)(tl_backend *be, float *y, int ldy, const float *x, int ldx,
                          const float *w, const float *b, int M, int K, int N, int accumulate);

static void check_linear(tl_backend *be, linear_op op, int M, int K, int N, int ldx, int ldy,
                         int with_bias, int accumulate) {
    float *x = rand_array((size_t)M * ldx, -1, 1), *w = rand_array((size_t)N * K, -1, 1);
    float *b = with_bias ? rand_array(N, -1, 1) : NULL;
    float *y = rand_array((size_t)M * ldy, -1, 1);
    double *ref = malloc((size_t)M * ldy * sizeof *ref);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldy; j++) {
            double s = y[(size_t)i * ldy + j];
            if (j < N) {
                s = accumulate ? s : 0;
                for (int k = 0; k < K; k++)
                    s += (double)x[(size_t)i * ldx + k] * w[(size_t)j * K + k];
                if (b) s += b[j];
            }
            ref[(size_t)i * ldy + j] = s; /* columns >= N must stay untouched */
        }
    op(be, y, ldy, x, ldx, w, b, M, K, N, accumulate);
    double d = max_abs_diff(y, ref, (size_t)M * ldy);
    CHECKF(d < 1e-4 * sqrt((double)K), "%s %dx%dx%d ld %d/%d bias %d acc %d: diff %g",
           op == be->linear ? "linear" : "linear_reproducible", M, K, N, ldx, ldy, with_bias,
           accumulate, d);
    free(x), free(w), free(b), free(y), free(ref);
}

TEST(linear_matches_reference) {
    for (int t = 0; t < 4; t++) {
        tl_backend *be = backends[t / 2];
        linear_op op = t % 2 ? be->linear_reproducible : be->linear;
        check_linear(be, op, 1, 7, 5, 7, 5, 1, 0);
        check_linear(be, op, 37, 53, 29, 53, 29, 0, 0);
        check_linear(be, op, 37, 53, 29, 60, 33, 1, 1);
        check_linear(be, op, 200, 64, 150, 64, 150, 1, 0);
        check_linear(be, op, 300, 33, 10, 40, 17, 1, 1); /* tall and narrow: split by rows */
        check_linear(be, op, 3, 100, 257, 100, 260, 1, 0);
        check_linear(be, op, 4, 77, 130, 80, 131, 1, 1); /* few rows: the small-M kernel */
        check_linear(be, op, 4, 512, 64, 512, 64, 0, 0);
        check_linear(be, op, 2, 15, 9, 15, 9, 1, 0);
    }
}

/* Pool workers call OpenBLAS; its process-wide thread count must be 1 while they do. */
TEST(linear_keeps_openblas_single_threaded) {
    openblas_set_num_threads(2);
    check_linear(backends[1], backends[1]->linear, 64, 64, 256, 64, 256, 1, 0);
    CHECK(openblas_get_num_threads() == 1);
}

/* linear_reproducible: every row of x alone (M = 1, 1 thread) gives bit for bit its row of the
 * batch (3 threads), whatever the strides; K and N cover the lane tail and a partial row tile. */
static void check_reproducible_rows(int M, int K, int N, int ldx, int ldy, int accumulate) {
    float *x = rand_array((size_t)M * ldx, -1, 1), *w = rand_array((size_t)N * K, -1, 1);
    float *b = rand_array(N, -1, 1), *batch = rand_array((size_t)M * ldy, -1, 1);
    float *alone = copy_array(batch, (size_t)M * ldy);
    backends[1]->linear_reproducible(backends[1], batch, ldy, x, ldx, w, b, M, K, N, accumulate);
    for (int i = 0; i < M; i++)
        backends[0]->linear_reproducible(backends[0], alone + (size_t)i * ldy, 0,
                                         x + (size_t)i * ldx, 0, w, b, 1, K, N, accumulate);
    CHECKF(!memcmp(batch, alone, (size_t)M * ldy * sizeof *batch),
           "linear_reproducible %dx%dx%d ld %d/%d acc %d: rows alone differ from the batch", M, K,
           N, ldx, ldy, accumulate);
    free(x), free(w), free(b), free(batch), free(alone);
}

TEST(linear_reproducible_rows_do_not_depend_on_the_batch) {
    check_reproducible_rows(17, 53, 29, 60, 33, 0);
    check_reproducible_rows(9, 512, 70, 512, 70, 1);
    check_reproducible_rows(70, 100, 262, 100, 262, 0);
    check_reproducible_rows(3, 7, 5, 7, 5, 1);
}

/* ---- layernorm, activations, softmax, axpy ---- */
TEST(layernorm_matches_reference) {
    for (int t = 0; t < 2; t++) {
        int rows = 19, dim = 77;
        float *x = rand_array((size_t)rows * dim, -3, 5), *w = rand_array(dim, 0.5f, 1.5f),
              *b = rand_array(dim, -1, 1), *y = malloc((size_t)rows * dim * sizeof *y);
        double *ref = malloc((size_t)rows * dim * sizeof *ref);
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int i = 0; i < dim; i++) mean += x[r * dim + i];
            mean /= dim;
            for (int i = 0; i < dim; i++) var += pow(x[r * dim + i] - mean, 2);
            var /= dim;
            for (int i = 0; i < dim; i++)
                ref[r * dim + i] = (x[r * dim + i] - mean) / sqrt(var + 1e-5) * w[i] + b[i];
        }
        backends[t]->layernorm(backends[t], y, x, w, b, rows, dim, 1e-5f);
        CHECK(max_abs_diff(y, ref, (size_t)rows * dim) < 1e-5);
        backends[t]->layernorm(backends[t], x, x, w, b, rows, dim, 1e-5f); /* in place */
        CHECK(max_abs_diff(x, ref, (size_t)rows * dim) < 1e-5);
        free(x), free(w), free(b), free(y), free(ref);
    }
}

TEST(quick_gelu_and_relu_match_reference) {
    for (int t = 0; t < 2; t++) {
        size_t n = 100003;
        float *x = rand_array(n, -12, 12);
        x[0] = -100, x[1] = 100, x[2] = 0, x[3] = -60;
        float *y = copy_array(x, n);
        double *ref = malloc(n * sizeof *ref);
        for (size_t i = 0; i < n; i++) ref[i] = x[i] / (1 + exp(-1.702 * x[i]));
        backends[t]->quick_gelu(backends[t], y, n);
        double worst = 0; /* relative error over float's own rounding of the exp argument */
        for (size_t i = 0; i < n; i++) {
            double rel = fabs(y[i] - ref[i]) / (fabs(ref[i]) + 1e-30);
            rel /= 1 + fabs(1.702 * x[i]);
            if (fabs(ref[i]) > 1e-30 && rel > worst) worst = rel;
        }
        CHECKF(worst < 3e-7, "quick_gelu worst scaled relative error %g", worst);
        CHECK(y[0] == 0 || fabs(y[0]) < 1e-30);
        CHECK(y[1] == 100);
        for (size_t i = 0; i < n; i++) ref[i] = x[i] > 0 ? x[i] : 0;
        backends[t]->relu(backends[t], x, n);
        CHECK(max_abs_diff(x, ref, n) == 0);
        free(x), free(y), free(ref);
    }
}

TEST(softmax_matches_reference) {
    for (int t = 0; t < 2; t++) {
        int rows = 23, n = 131;
        float *x = rand_array((size_t)rows * n, -30, 30);
        x[5] = 1e4f; /* stability: a huge logit must not overflow */
        double *ref = malloc((size_t)rows * n * sizeof *ref);
        for (int r = 0; r < rows; r++) {
            double m = -INFINITY, s = 0;
            for (int i = 0; i < n; i++) m = fmax(m, x[r * n + i]);
            for (int i = 0; i < n; i++) s += exp(x[r * n + i] - m);
            for (int i = 0; i < n; i++) ref[r * n + i] = exp(x[r * n + i] - m) / s;
        }
        backends[t]->softmax(backends[t], x, rows, n);
        CHECK(max_abs_diff(x, ref, (size_t)rows * n) < 1e-6);
        free(x), free(ref);
    }
}

TEST(axpy_and_l2_normalize_match_reference) {
    for (int t = 0; t < 2; t++) {
        size_t n = 70001;
        float *x = rand_array(n, -1, 1), *y = rand_array(n, -1, 1);
        double *ref = malloc(n * sizeof *ref);
        for (size_t i = 0; i < n; i++) ref[i] = y[i] + 0.37 * x[i];
        backends[t]->axpy(backends[t], y, x, 0.37f, n);
        CHECK(max_abs_diff(y, ref, n) < 1e-6);
        int rows = 7, dim = 33;
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int i = 0; i < dim; i++) s += (double)x[r * dim + i] * x[r * dim + i];
            for (int i = 0; i < dim; i++) ref[r * dim + i] = x[r * dim + i] / sqrt(s);
        }
        for (int i = 0; i < dim; i++) x[3 * dim + i] = ref[3 * dim + i] = 0; /* zero row */
        backends[t]->l2_normalize(backends[t], x, rows, dim);
        CHECK(max_abs_diff(x, ref, (size_t)rows * dim) < 1e-6);
        free(x), free(y), free(ref);
    }
}

/* ---- gathers and patches ---- */
TEST(gather_add_and_im2col_match_reference) {
    for (int t = 0; t < 2; t++) {
        tl_backend *be = backends[t];
        int n = 11, dim = 9, vocab = 20, period = 4;
        float *table = rand_array((size_t)vocab * dim, -1, 1),
              *add = rand_array(period * dim, -1, 1);
        int32_t rows[11] = {3, 0, 19, 3, 7, 7, 1, 2, 18, 5, 0};
        float *y = malloc((size_t)n * dim * sizeof *y);
        double *ref = malloc((size_t)n * dim * sizeof *ref);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < dim; j++)
                ref[i * dim + j] = (double)table[rows[i] * dim + j] + add[(i % period) * dim + j];
        be->gather_rows(be, y, table, rows, n, dim);
        be->add_rows_periodic(be, y, add, n, period, dim);
        CHECK(max_abs_diff(y, ref, (size_t)n * dim) < 1e-6);
        free(table), free(add), free(y), free(ref);

        int B = 2, C = 3, S = 12, p = 4, G = S / p, K = C * p * p, lead = 1;
        float *px = rand_array((size_t)B * C * S * S, -1, 1);
        size_t out_n = (size_t)B * (lead + G * G) * K;
        float *out = rand_array(out_n, 5, 6);
        double *want = calloc(out_n, sizeof *want);
        for (int b = 0; b < B; b++)
            for (int g = 0; g < G * G; g++)
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < p; ky++)
                        for (int kx = 0; kx < p; kx++)
                            want[((size_t)b * (lead + G * G) + lead + g) * K + (c * p + ky) * p +
                                 kx] = px[((size_t)(b * C + c) * S + (g / G) * p + ky) * S +
                                          (g % G) * p + kx];
        be->im2col_patches(be, out, px, B, C, S, p, lead);
        CHECK(max_abs_diff(out, want, out_n) == 0);
        free(px), free(out), free(want);
    }
}

/* ---- attention ---- */
typedef struct attn_case {
    int B, Tq, Tk, H, hd, ldq, ldkv, causal, use_key_len, want_probs;
} attn_case;

static void attention_reference(const attn_case *c, const float *q, const float *k, const float *v,
                                const int *key_len, double *out, double *probs) {
    double *s = malloc((size_t)c->Tk * sizeof *s);
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int i = 0; i < c->Tq; i++) {
                int keys = key_len ? key_len[b] : c->Tk;
                double m = -INFINITY, sum = 0;
                for (int j = 0; j < c->Tk; j++) {
                    int visible = j < keys && !(c->causal && j > i);
                    double d = 0;
                    for (int e = 0; e < c->hd; e++)
                        d += (double)q[((size_t)b * c->Tq + i) * c->ldq + h * c->hd + e] *
                             k[((size_t)b * c->Tk + j) * c->ldkv + h * c->hd + e];
                    s[j] = visible ? d / sqrt(c->hd) : -INFINITY;
                    m = fmax(m, s[j]);
                }
                for (int j = 0; j < c->Tk; j++) sum += s[j] == -INFINITY ? 0 : exp(s[j] - m);
                for (int j = 0; j < c->Tk; j++) s[j] = s[j] == -INFINITY ? 0 : exp(s[j] - m) / sum;
                for (int e = 0; e < c->hd; e++) {
                    double o = 0;
                    for (int j = 0; j < c->Tk; j++)
                        o += s[j] * v[((size_t)b * c->Tk + j) * c->ldkv + h * c->hd + e];
                    out[((size_t)b * c->Tq + i) * c->H * c->hd + h * c->hd + e] = o;
                }
                for (int j = 0; j < c->Tk; j++)
                    probs[(((size_t)b * c->H + h) * c->Tq + i) * c->Tk + j] = s[j];
            }
    free(s);
}

static void check_attention(tl_backend *be, attn_case c) {
    float *q = rand_array((size_t)c.B * c.Tq * c.ldq, -2, 2);
    float *k = rand_array((size_t)c.B * c.Tk * c.ldkv, -2, 2);
    float *v = rand_array((size_t)c.B * c.Tk * c.ldkv, -2, 2);
    int key_len[3] = {c.Tk, c.Tk / 2 + 1, 1};
    size_t n_out = (size_t)c.B * c.Tq * c.H * c.hd, n_probs = (size_t)c.B * c.H * c.Tq * c.Tk;
    float *out = malloc(n_out * sizeof *out), *probs = malloc(n_probs * sizeof *probs);
    double *ref = malloc(n_out * sizeof *ref), *ref_probs = malloc(n_probs * sizeof *ref_probs);
    const int *kl = c.use_key_len ? key_len : NULL;
    attention_reference(&c, q, k, v, kl, ref, ref_probs);
    be->attention(be, out, q, c.ldq, k, v, c.ldkv, c.B, c.Tq, c.Tk, c.H, c.hd, c.causal, kl,
                  c.want_probs ? probs : NULL);
    double d = max_abs_diff(out, ref, n_out);
    CHECKF(d < 2e-5, "attention B%d Tq%d Tk%d H%d hd%d causal %d key_len %d probs %d: %g", c.B,
           c.Tq, c.Tk, c.H, c.hd, c.causal, c.use_key_len, c.want_probs, d);
    if (c.want_probs) CHECK(max_abs_diff(probs, ref_probs, n_probs) < 1e-6);
    free(q), free(k), free(v), free(out), free(probs), free(ref), free(ref_probs);
}

TEST(attention_matches_reference) {
    for (int t = 0; t < 2; t++) {
        tl_backend *be = backends[t];
        check_attention(be, (attn_case){2, 13, 13, 3, 5, 15, 15, 0, 0, 0});
        check_attention(be, (attn_case){2, 13, 13, 3, 5, 20, 17, 1, 0, 1});
        check_attention(be, (attn_case){3, 9, 9, 2, 8, 16, 16, 1, 1, 1});
        check_attention(be, (attn_case){3, 5, 11, 4, 3, 12, 30, 0, 1, 1});     /* cross attention */
        check_attention(be, (attn_case){1, 300, 300, 2, 16, 32, 32, 1, 0, 0}); /* > 1 tile */
        check_attention(be, (attn_case){2, 17, 17, 4, 16, 64, 64, 0, 0, 0});
        /* one query row (a decoding step): every head in one pass */
        check_attention(be, (attn_case){3, 1, 197, 8, 64, 512, 512, 0, 1, 0});
        check_attention(be, (attn_case){2, 1, 7, 3, 5, 15, 17, 1, 0, 0});
        check_attention(be, (attn_case){3, 1, 30, 2, 19, 40, 38, 0, 1, 0});
        check_attention(be, (attn_case){2, 1, 9, 2, 8, 16, 16, 0, 1, 1});
    }
}

/* ---- thread pool ---- */
typedef struct visit_ctx {
    atomic_int *hits;
    atomic_int bad_thread;
    int threads;
} visit_ctx;

static void visit(void *ctx, size_t begin, size_t end, int thread) {
    visit_ctx *v = ctx;
    if (thread < 0 || thread >= v->threads) atomic_fetch_add(&v->bad_thread, 1);
    for (size_t i = begin; i < end; i++) atomic_fetch_add(&v->hits[i], 1);
}

TEST(pool_visits_every_index_once) {
    int thread_counts[] = {1, 2, 4};
    for (int t = 0; t < 3; t++) {
        tl_pool *pool = tl_pool_create(thread_counts[t]);
        REQUIRE(pool != NULL);
        CHECK(tl_pool_threads(pool) == thread_counts[t]);
        size_t sizes[] = {0, 1, 2, 3, 7, 64, 1000, 12345};
        for (int rep = 0; rep < 200; rep++)
            for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
                size_t n = sizes[s];
                atomic_int *hits = calloc(n + 1, sizeof *hits);
                visit_ctx v = {hits, 0, thread_counts[t]};
                tl_pool_for(pool, n, (size_t)(rep % 5), visit, &v);
                int ok = atomic_load(&v.bad_thread) == 0;
                for (size_t i = 0; i < n; i++) ok &= atomic_load(&hits[i]) == 1;
                CHECKF(ok, "threads %d n %zu rep %d", thread_counts[t], n, rep);
                free(hits);
            }
        tl_pool_destroy(pool);
    }
}

TEST(cuda_backend_reports_unsupported) {
    tl_backend *be = (tl_backend *)1;
    tl_error err = {0};
    CHECK(tl_backend_cuda_create(&be, 0, &err) == TL_ERR_UNSUPPORTED);
    CHECK(be == NULL);
    CHECK(strstr(err.message, "CUDA") != NULL);
}

int main(void) {
    tl_error err;
    for (int t = 0; t < 2; t++)
        if (tl_backend_cpu_create(&backends[t], backend_threads[t], &err)) {
            printf("Bail out! %s\n", err.message);
            return 1;
        }
    RUN(linear_matches_reference);
    RUN(linear_keeps_openblas_single_threaded);
    RUN(linear_reproducible_rows_do_not_depend_on_the_batch);
    RUN(layernorm_matches_reference);
    RUN(quick_gelu_and_relu_match_reference);
    RUN(softmax_matches_reference);
    RUN(axpy_and_l2_normalize_match_reference);
    RUN(gather_add_and_im2col_match_reference);
    RUN(attention_matches_reference);
    RUN(pool_visits_every_index_once);
    RUN(cuda_backend_reports_unsupported);
    for (int t = 0; t < 2; t++) backends[t]->destroy(backends[t]);
    return th_done();
}
