/* bench_index: vector_index build throughput, search latency (p50/p99, k=10) and recall@10
 * against exact search, over random normalised vectors (uniform, or clustered as embeddings
 * are), for Flat, fp16/SQ8 storage and IVF, batch 1 and 32, unfiltered and filtered to a
 * category holding 10% of the products. Not a test: timings need a quiet machine.
 *   bench_index [--n N] [--dim D] [--queries Q] [--nlist L] [--nprobe P] [--threads T]
 *               [--clustered] [--factory F]... */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tailor_model.h"
#include "vector_index.h"

#define N_CATEGORIES 10
#define K            10

#define MAX_FACTORIES 8

typedef struct bench_opts {
    int64_t n;
    int dim, queries, nlist, nprobe, threads, clustered, n_factories;
    const char *factories[MAX_FACTORIES];
} bench_opts;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float uniform_pm1(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *random_unit_vectors(int64_t n, int dim) {
    float *x = malloc((size_t)n * dim * sizeof *x);
    for (int64_t i = 0; x && i < n; i++) {
        double s = 0;
        for (int d = 0; d < dim; d++) {
            float v = uniform_pm1();
            x[i * dim + d] = v;
            s += (double)v * v;
        }
        for (int d = 0; d < dim; d++) x[i * dim + d] /= (float)sqrt(s);
    }
    return x;
}

/* Clustered unit vectors: 1000 random centres, each vector a centre plus noise of about the
 * centre's norm, so that neighbours exist as they do among product embeddings. */
static float *clustered_unit_vectors(int64_t n, int dim, const float *centres) {
    float *x = random_unit_vectors(n, dim);
    for (int64_t i = 0; x && i < n; i++) {
        const float *c = centres + (size_t)((uniform_pm1() + 1.0f) * 0.5f * 999.0f) * dim;
        double s = 0;
        for (int d = 0; d < dim; d++) {
            float v = c[d] + x[i * dim + d];
            x[i * dim + d] = v;
            s += (double)v * v;
        }
        for (int d = 0; d < dim; d++) x[i * dim + d] /= (float)sqrt(s);
    }
    return x;
}

static const char *category_name(int c) {
    static const char *names[N_CATEGORIES] = {"c0", "c1", "c2", "c3", "c4",
                                              "c5", "c6", "c7", "c8", "c9"};
    return names[c];
}

/* Builds an index with the products split evenly over 10 categories (category c0 = 10%). */
static vector_index *build(const bench_opts *o, const char *factory, const float *x) {
    vector_index *ix;
    tl_error err;
    if (vector_index_create(&ix, o->dim, factory, o->threads, &err)) {
        fprintf(stderr, "bench_index: %s\n", err.message);
        return NULL;
    }
    double t0 = now_s();
    if (vector_index_needs_training(ix)) {
        int64_t n_train = o->n < 100000 ? o->n : 100000;
        if (vector_index_train(ix, x, n_train, &err)) {
            fprintf(stderr, "bench_index: %s\n", err.message);
            vector_index_free(ix);
            return NULL;
        }
    }
    double t1 = now_s();
    int64_t per = o->n / N_CATEGORIES;
    int64_t *ids = malloc(per * sizeof *ids);
    for (int c = 0; c < N_CATEGORIES; c++) {
        for (int64_t i = 0; i < per; i++) ids[i] = c * per + i;
        if (vector_index_add(ix, category_name(c), ids, x + (size_t)c * per * o->dim, per, &err))
            fprintf(stderr, "bench_index: %s\n", err.message);
    }
    double t2 = now_s();
    free(ids);
    printf("%-14s build: train %.2f s, add %.0f vectors/s (%lld vectors)\n", factory, t1 - t0,
           per * N_CATEGORIES / (t2 - t1), (long long)(per * N_CATEGORIES));
    return ix;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Latency percentiles of searching `batch` queries at a time, in milliseconds per call. */
static void time_search(vector_index *ix, const char *factory, const float *q, int queries,
                        int batch, const char *category, int dim) {
    int calls = queries / batch;
    double *ms = malloc(calls * sizeof *ms);
    float *scores = malloc((size_t)batch * K * sizeof *scores);
    int64_t *ids = malloc((size_t)batch * K * sizeof *ids);
    tl_error err;
    for (int c = 0; c < calls; c++) {
        double t0 = now_s();
        if (vector_index_search(ix, q + (size_t)c * batch * dim, batch, K, category, scores, ids,
                                &err))
            fprintf(stderr, "bench_index: %s\n", err.message);
        ms[c] = (now_s() - t0) * 1e3;
    }
    qsort(ms, calls, sizeof *ms, compare_double);
    printf("%-14s search batch %2d %-12s p50 %8.3f ms  p99 %8.3f ms  (%d calls)\n", factory, batch,
           category ? "filter 10%" : "unfiltered", ms[calls / 2], ms[(int)(calls * 0.99)], calls);
    free(ms);
    free(scores);
    free(ids);
}

/* Top-K ids of every query, unfiltered (caller frees). */
static int64_t *search_all(vector_index *ix, const float *q, int queries) {
    float *scores = malloc((size_t)queries * K * sizeof *scores);
    int64_t *ids = malloc((size_t)queries * K * sizeof *ids);
    tl_error err;
    if (scores && ids && vector_index_search(ix, q, queries, K, NULL, scores, ids, &err))
        fprintf(stderr, "bench_index: %s\n", err.message);
    free(scores);
    return ids;
}

/* Builds factory, prints its search latencies and, against exact (the first factory's ids,
 * NULL for the first), its recall@10. Returns the unfiltered top-K ids (caller frees). */
static int64_t *bench_factory(const bench_opts *o, const char *factory, const float *x,
                              const float *q, const int64_t *exact) {
    vector_index *ix = build(o, factory, x);
    if (!ix) return NULL;
    tl_error err;
    if (!strncmp(factory, "IVF", 3) && vector_index_set_param(ix, "nprobe", o->nprobe, &err))
        fprintf(stderr, "bench_index: %s\n", err.message);
    const int batches[2] = {1, 32};
    for (int b = 0; b < 2; b++)
        for (int f = 0; f < 2; f++)
            time_search(ix, factory, q, o->queries, batches[b], f ? "c0" : NULL, o->dim);
    int64_t *ids = search_all(ix, q, o->queries);
    if (ids && exact) {
        int64_t hits = 0;
        for (int i = 0; i < o->queries; i++)
            for (int a = 0; a < K; a++)
                for (int b = 0; b < K; b++) hits += ids[i * K + a] == exact[i * K + b];
        printf("%-14s recall@10 vs exact %.4f\n", factory, (double)hits / (o->queries * K));
    }
    vector_index_free(ix);
    return ids;
}

static int parse_args(int argc, char **argv, bench_opts *o) {
    static const struct option opts[] = {
        {"n", required_argument, NULL, 'n'},
        {"dim", required_argument, NULL, 'd'},
        {"queries", required_argument, NULL, 'q'},
        {"nlist", required_argument, NULL, 'l'},
        {"nprobe", required_argument, NULL, 'p'},
        {"threads", required_argument, NULL, 't'},
        {"clustered", no_argument, NULL, 'c'},
        {"factory", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        long v = optarg ? atol(optarg) : 0;
        switch (c) {
            case 'n':
                o->n = v;
                break;
            case 'd':
                o->dim = (int)v;
                break;
            case 'q':
                o->queries = (int)v;
                break;
            case 'l':
                o->nlist = (int)v;
                break;
            case 'p':
                o->nprobe = (int)v;
                break;
            case 't':
                o->threads = (int)v;
                break;
            case 'c':
                o->clustered = 1;
                break;
            case 'f':
                if (o->n_factories == MAX_FACTORIES)
                    return fprintf(stderr, "bench_index: at most %d factories\n", MAX_FACTORIES), 2;
                o->factories[o->n_factories++] = optarg;
                break;
            case 'h':
                printf("usage: bench_index [--n N] [--dim D] [--queries Q] [--nlist L] "
                       "[--nprobe P] [--threads T]\n"
                       "                   [--clustered] [--factory F]...\n"
                       "Times vector_index build and k=10 search (batch 1 and 32; unfiltered and\n"
                       "a 10%% category filter) on random unit vectors (--clustered: around 1000\n"
                       "random centres), and each factory's recall@10 against the first one.\n"
                       "Defaults: N=100000 D=512 Q=320 L=4*sqrt(N) P=L/16 T=all CPUs;\n"
                       "factories IDMap2,Flat IDMap2,SQfp16 IDMap2,SQ8 IVF<L>,Flat.\n");
                return 0;
            case 'v':
                printf("bench_index %s\n", TAILOR_VERSION);
                return 0;
            default:
                return 2;
        }
    }
    if (o->n < N_CATEGORIES || o->dim < 1 || o->queries < 32) {
        fprintf(stderr, "bench_index: needs N >= 10, D >= 1, Q >= 32\n");
        return 2;
    }
    return -1;
}

int main(int argc, char **argv) {
    bench_opts o = {.n = 100000, .dim = 512, .queries = 320};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (!o.nlist) o.nlist = (int)(4 * sqrt((double)o.n));
    if (!o.nprobe) o.nprobe = o.nlist / 16 > 1 ? o.nlist / 16 : 1;
    float *centres = o.clustered ? random_unit_vectors(1000, o.dim) : NULL;
    float *x =
        o.clustered ? clustered_unit_vectors(o.n, o.dim, centres) : random_unit_vectors(o.n, o.dim);
    float *q = o.clustered ? clustered_unit_vectors(o.queries, o.dim, centres)
                           : random_unit_vectors(o.queries, o.dim);
    if (!x || !q || (o.clustered && !centres))
        return fprintf(stderr, "bench_index: out of memory\n"), 1;
    char ivf[64];
    snprintf(ivf, sizeof ivf, "IVF%d,Flat", o.nlist);
    if (!o.n_factories) {
        const char *defaults[] = {"IDMap2,Flat", "IDMap2,SQfp16", "IDMap2,SQ8", ivf};
        for (int f = 0; f < 4; f++) o.factories[o.n_factories++] = defaults[f];
    }
    printf("N=%lld dim=%d queries=%d threads=%d nprobe=%d data=%s\n", (long long)o.n, o.dim,
           o.queries, o.threads, o.nprobe, o.clustered ? "clustered" : "uniform");
    int64_t *exact = NULL;
    for (int f = 0; f < o.n_factories; f++) {
        int64_t *ids = bench_factory(&o, o.factories[f], x, q, exact);
        if (f == 0)
            exact = ids;
        else
            free(ids);
    }
    free(exact);
    free(centres);
    free(x);
    free(q);
    return 0;
}
