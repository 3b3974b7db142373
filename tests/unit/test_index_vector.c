/* vector_index: exactness of IDMap2,Flat against brute force, IVF recall, the category filter,
 * removal and upsert, save/load, other factory strings and error paths. */
#include <stdint.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

#include "harness.h"
#include "vector_index.h"

#define DIM 512
#define N   5000
#define NQ  50
#define K   10

static float *base, *queries;

static uint64_t rng_state = 0x1234567887654321ull;
static double uniform01(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static float gaussian(void) {
    double u = uniform01() + 1e-12, v = uniform01();
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}
static void random_unit_vectors(float *x, int n) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < DIM; j++) {
            x[i * DIM + j] = gaussian();
            s += (double)x[i * DIM + j] * x[i * DIM + j];
        }
        for (int j = 0; j < DIM; j++) x[i * DIM + j] /= (float)sqrt(s);
    }
}

#define REQUIRE_OR_NULL(cond, message)                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("# %s\n", message);                                                             \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

static const char *category_of(int i) {
    return i % 10 == 3 ? "shoes" : "dresses";
}
static int64_t id_of(int i) {
    return 1000000007ll * 3 + i * 7;
}

/* Brute-force top-K of query q over base rows accepted by category (NULL = all). */
static void brute_force(const float *q, const char *category, float *s, int64_t *ids) {
    for (int j = 0; j < K; j++) s[j] = -INFINITY, ids[j] = -1;
    for (int i = 0; i < N; i++) {
        if (category && strcmp(category, category_of(i))) continue;
        double dot = 0;
        for (int d = 0; d < DIM; d++) dot += (double)q[d] * base[i * DIM + d];
        int pos = K;
        while (pos > 0 && dot > s[pos - 1]) pos--;
        if (pos == K) continue;
        memmove(s + pos + 1, s + pos, (K - pos - 1) * sizeof *s);
        memmove(ids + pos + 1, ids + pos, (K - pos - 1) * sizeof *ids);
        s[pos] = (float)dot, ids[pos] = id_of(i);
    }
}

/* Builds an index over the first n rows of base: categories by category_of, ids by id_of,
 * added in one batch per category. */
static vector_index *build_n(const char *factory, int n) {
    vector_index *ix;
    tl_error err = {0};
    REQUIRE_OR_NULL(!vector_index_create(&ix, DIM, factory, 2, &err), err.message);
    if (vector_index_needs_training(ix) && vector_index_train(ix, base, n, &err)) {
        vector_index_free(ix);
        REQUIRE_OR_NULL(0, err.message);
    }
    float *rows = malloc(sizeof(float) * n * DIM);
    int64_t *ids = malloc(sizeof(int64_t) * n);
    const char *categories[2] = {"shoes", "dresses"};
    tl_status st = TL_OK;
    for (int c = 0; c < 2 && !st; c++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(category_of(i), categories[c])) {
                memcpy(rows + (size_t)m * DIM, base + (size_t)i * DIM, sizeof(float) * DIM);
                ids[m++] = id_of(i);
            }
        st = vector_index_add(ix, categories[c], ids, rows, m, &err);
    }
    free(rows);
    free(ids);
    if (st) vector_index_free(ix);
    REQUIRE_OR_NULL(!st, err.message);
    return ix;
}

static vector_index *build(const char *factory) {
    return build_n(factory, N);
}

/* Queries matching brute force exactly; one_by_one searches each query alone (the unfiltered
 * search of few queries splits the sub-indexes over threads). */
static int exact_match_count(vector_index *ix, const char *category, int one_by_one) {
    float s[NQ * K], bs[K];
    int64_t ids[NQ * K], bids[K];
    tl_error err;
    for (int q = 0; q < (one_by_one ? NQ : 1); q++)
        if (vector_index_search(ix, queries + q * DIM, one_by_one ? 1 : NQ, K, category, s + q * K,
                                ids + q * K, &err))
            return -1;
    int exact = 0;
    for (int q = 0; q < NQ; q++) {
        brute_force(queries + q * DIM, category, bs, bids);
        int same = 1;
        for (int j = 0; j < K; j++)
            same &= ids[q * K + j] == bids[j] && fabsf(s[q * K + j] - bs[j]) <= 1e-5f;
        exact += same;
    }
    return exact;
}

TEST(flat_equals_brute_force) {
    vector_index *ix = build(NULL);
    REQUIRE(ix);
    CHECK(vector_index_count(ix) == N);
    CHECKF(exact_match_count(ix, NULL, 0) == NQ, "unfiltered");
    CHECKF(exact_match_count(ix, NULL, 1) == NQ, "unfiltered, one query at a time");
    CHECKF(exact_match_count(ix, "shoes", 0) == NQ, "filtered to shoes");
    CHECKF(exact_match_count(ix, "shoes", 1) == NQ, "filtered to shoes, one query at a time");
    CHECK(vector_index_category_count(ix, "shoes") == N / 10);
    vector_index_free(ix);
}

static double recall_vs_brute_force(vector_index *ix, const float *qs, int nq) {
    float *s = malloc(sizeof(float) * nq * K), bs[K];
    int64_t *ids = malloc(sizeof(int64_t) * nq * K), bids[K];
    tl_error err;
    int hits = 0;
    if (!vector_index_search(ix, qs, nq, K, NULL, s, ids, &err))
        for (int q = 0; q < nq; q++) {
            brute_force(qs + q * DIM, NULL, bs, bids);
            for (int a = 0; a < K; a++)
                for (int b = 0; b < K; b++) hits += ids[q * K + a] == bids[b];
        }
    free(s);
    free(ids);
    return (double)hits / (nq * K);
}

/* Clustered data, as embeddings of a catalogue are: 50 random centres, each point a centre
 * plus noise of comparable norm. Fills base (N rows) and qs (nq rows) from the same mixture. */
static void clustered_vectors(float *x, int n, const float *centres) {
    for (int i = 0; i < n; i++) {
        const float *c = centres + (size_t)(uniform01() * 50) * DIM;
        double s = 0;
        for (int d = 0; d < DIM; d++) {
            x[i * DIM + d] = c[d] + 0.045f * gaussian();
            s += (double)x[i * DIM + d] * x[i * DIM + d];
        }
        for (int d = 0; d < DIM; d++) x[i * DIM + d] /= (float)sqrt(s);
    }
}

/* Recall@10 of IVF against exact search over the same (clustered) base, at each nprobe. */
TEST(ivf_recall_at_recommended_nprobe) {
    tl_error err;
    vector_index *uniform = build("IVF64,Flat");
    REQUIRE(uniform);
    REQUIRE(!vector_index_set_param(uniform, "nprobe", 16, &err));
    printf("# uniform random data (no structure): IVF64,Flat nprobe=16 recall@10 %.3f\n",
           recall_vs_brute_force(uniform, queries, NQ));
    vector_index_free(uniform);

    float *centres = malloc(sizeof(float) * 50 * DIM), *saved = base;
    float *clustered = malloc(sizeof(float) * (N + NQ) * DIM);
    random_unit_vectors(centres, 50);
    clustered_vectors(clustered, N + NQ, centres);
    base = clustered;
    vector_index *ix = build("IVF64,Flat");
    REQUIRE(ix);
    const int nprobes[] = {1, 2, 4, 8, 16};
    double recall[5];
    for (int i = 0; i < 5; i++) {
        REQUIRE(!vector_index_set_param(ix, "nprobe", nprobes[i], &err));
        recall[i] = recall_vs_brute_force(ix, clustered + N * DIM, NQ);
        printf("# clustered data: IVF64,Flat nprobe=%d recall@10 %.3f\n", nprobes[i], recall[i]);
    }
    CHECKF(recall[3] >= 0.95, "recall@10 at the recommended nprobe 8 = %.3f", recall[3]);
    CHECK(vector_index_set_param(ix, "efSearch", 16, &err) == TL_ERR_INVALID);
    base = saved;
    free(clustered);
    free(centres);
    vector_index_free(ix);
}

/* Unfiltered IVF searches assign the coarse lists once for all categories and split the
 * categories over threads; the result must be the merge of each category's own search. (The
 * assignment itself is checked by the recall test above.) */
TEST(ivf_unfiltered_equals_merged_categories) {
    tl_error err;
    vector_index *ix = build("IVF32,Flat");
    REQUIRE(ix);
    REQUIRE(!vector_index_set_param(ix, "nprobe", 4, &err));
    int same = 0;
    for (int batched = 0; batched < 2; batched++) {
        float s[NQ * K], shoes_s[NQ * K], dresses_s[NQ * K];
        int64_t ids[NQ * K], shoes[NQ * K], dresses[NQ * K];
        for (int q = 0; q < NQ; q += batched ? NQ : 1) {
            int nq = batched ? NQ : 1;
            REQUIRE(!vector_index_search(ix, queries + q * DIM, nq, K, NULL, s + q * K, ids + q * K,
                                         &err));
            REQUIRE(!vector_index_search(ix, queries + q * DIM, nq, K, "shoes", shoes_s + q * K,
                                         shoes + q * K, &err));
            REQUIRE(!vector_index_search(ix, queries + q * DIM, nq, K, "dresses", dresses_s + q * K,
                                         dresses + q * K, &err));
        }
        for (int q = 0; q < NQ; q++) {
            int a = 0, b = 0, ok = 1;
            for (int j = 0; j < K; j++) {
                int take_shoe =
                    shoes[q * K + a] >= 0 &&
                    (dresses[q * K + b] < 0 || shoes_s[q * K + a] > dresses_s[q * K + b]);
                int64_t want = take_shoe ? shoes[q * K + a++] : dresses[q * K + b++];
                ok &= ids[q * K + j] == want;
            }
            same += ok;
        }
    }
    CHECKF(same == 2 * NQ, "%d of %d queries equal the merged per-category results", same, 2 * NQ);
    vector_index_free(ix);
}

TEST(remove_and_upsert) {
    vector_index *ix = build(NULL);
    REQUIRE(ix);
    tl_error err;
    float s[K];
    int64_t ids[K], n_removed = -1, victim = id_of(0), unknown = -5;
    REQUIRE(!vector_index_search(ix, base, 1, K, NULL, s, ids, &err));
    CHECK(ids[0] == victim);
    int64_t both[2] = {victim, unknown};
    CHECK(!vector_index_remove(ix, both, 2, &n_removed, &err));
    CHECK(n_removed == 1);
    CHECK(vector_index_count(ix) == N - 1);
    REQUIRE(!vector_index_search(ix, base, 1, K, NULL, s, ids, &err));
    for (int j = 0; j < K; j++) CHECK(ids[j] != victim);
    /* Upsert into another category moves the id. */
    int64_t moved = id_of(3);
    CHECK(!vector_index_add(ix, "hats", &moved, base + 3 * DIM, 1, &err));
    CHECK(vector_index_count(ix) == N - 1);
    CHECK(vector_index_category_count(ix, "hats") == 1);
    CHECK(vector_index_category_count(ix, "shoes") == N / 10 - 1);
    REQUIRE(!vector_index_search(ix, base + 3 * DIM, 1, K, "hats", s, ids, &err));
    CHECK(ids[0] == moved && ids[1] == -1 && isinf(s[1]));
    vector_index_free(ix);
}

TEST(save_load_round_trip) {
    vector_index *ix = build("IVF32,Flat"), *back = NULL, *mapped = NULL;
    REQUIRE(ix);
    tl_error err;
    char path[] = "/tmp/tl_test_gallery_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    CHECK(!vector_index_set_param(ix, "nprobe", 8, &err));
    CHECK(!vector_index_save(ix, path, &err));
    CHECKF(!vector_index_load(&back, path, 0, 2, &err), "%s", err.message);
    CHECKF(!vector_index_load(&mapped, path, VECTOR_INDEX_READ_ONLY, 2, &err), "%s", err.message);
    REQUIRE(back && mapped);
    float s1[NQ * K], s2[NQ * K], s3[NQ * K];
    int64_t i1[NQ * K], i2[NQ * K], i3[NQ * K];
    CHECK(!vector_index_set_param(back, "nprobe", 8, &err));
    CHECK(!vector_index_set_param(mapped, "nprobe", 8, &err));
    CHECK(!vector_index_search(ix, queries, NQ, K, "shoes", s1, i1, &err));
    CHECK(!vector_index_search(back, queries, NQ, K, "shoes", s2, i2, &err));
    CHECK(!vector_index_search(mapped, queries, NQ, K, "shoes", s3, i3, &err));
    CHECK(!memcmp(i1, i2, sizeof i1) && !memcmp(i1, i3, sizeof i1));
    CHECK(!memcmp(s1, s2, sizeof s1) && !memcmp(s1, s3, sizeof s1));
    CHECK(vector_index_count(back) == N && !strcmp(vector_index_factory(back), "IVF32,Flat"));
    int64_t id = 1;
    CHECK(vector_index_add(mapped, "x", &id, base, 1, &err) == TL_ERR_UNSUPPORTED);
    vector_index *bad = NULL;
    CHECK(vector_index_load(&bad, "/nonexistent/gallery", 0, 1, &err) == TL_ERR_IO && !bad);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "TLVIDX01garbage", 15) == 15);
    close(fd);
    CHECK(vector_index_load(&bad, path, 0, 1, &err) == TL_ERR_FORMAT && !bad);
    unlink(path);
    vector_index_free(ix);
    vector_index_free(back);
    vector_index_free(mapped);
}

TEST(other_factories_search) {
    const char *factories[] = {"IDMap2,HNSW32", "IVF16,PQ32x4", "IDMap2,SQ8", "IDMap2,SQfp16"};
    tl_error err;
    for (int f = 0; f < 4; f++) {
        vector_index *ix = build_n(factories[f], 2000);
        REQUIRE(ix);
        float s[K];
        int64_t ids[K];
        CHECK(!vector_index_search(ix, base + 42 * DIM, 1, K, NULL, s, ids, &err));
        CHECKF(ids[0] == id_of(42), "%s finds an item itself", factories[f]);
        int64_t victim = id_of(42);
        tl_status st = vector_index_remove(ix, &victim, 1, NULL, &err);
        CHECKF(f == 0 ? st == TL_ERR_UNSUPPORTED : st == TL_OK, "%s remove: %s", factories[f],
               err.message);
        vector_index_free(ix);
    }
}

static float max_abs_diff(const float *a, const float *b) {
    float d = 0.0f;
    for (int j = 0; j < DIM; j++) d = fmaxf(d, fabsf(a[j] - b[j]));
    return d;
}

/* An item's stored vector comes back exactly where the structure keeps it. */
TEST(stored_vectors) {
    tl_error err;
    float v[DIM];
    vector_index *ix = build(NULL);
    REQUIRE(ix);
    CHECKF(!vector_index_get(ix, id_of(5), v, &err), "%s", err.message);
    CHECK(max_abs_diff(v, base + 5 * DIM) < 1e-6f);
    CHECK(vector_index_get(ix, -5, v, &err) == TL_ERR_NOT_FOUND);
    int64_t victim = id_of(5);
    CHECK(!vector_index_remove(ix, &victim, 1, NULL, &err));
    CHECK(vector_index_get(ix, victim, v, &err) == TL_ERR_NOT_FOUND);
    vector_index_free(ix);
    const char *factories[] = {"IDMap2,HNSW32", "IDMap2,SQ8", "IVF16,Flat"};
    const tl_status want[] = {TL_OK, TL_ERR_UNSUPPORTED, TL_ERR_UNSUPPORTED};
    for (int f = 0; f < 3; f++) {
        REQUIRE((ix = build_n(factories[f], 2000)));
        tl_status st = vector_index_get(ix, id_of(42), v, &err);
        CHECKF(st == want[f], "%s: %d", factories[f], st);
        if (!st) CHECK(max_abs_diff(v, base + 42 * DIM) < 1e-6f);
        vector_index_free(ix);
    }
}

TEST(bad_input_is_an_error) {
    vector_index *ix = NULL;
    tl_error err;
    CHECK(vector_index_create(&ix, DIM, "NoSuchIndex", 1, &err) != TL_OK && !ix);
    CHECK(vector_index_create(&ix, 0, NULL, 1, &err) == TL_ERR_INVALID);
    REQUIRE(!vector_index_create(&ix, DIM, "IVF8,Flat", 1, &err));
    int64_t id = 7;
    CHECK(vector_index_add(ix, NULL, &id, base, 1, &err) == TL_ERR_INVALID);
    vector_index_free(ix);
    REQUIRE(!vector_index_create(&ix, DIM, NULL, 1, &err));
    float zero[DIM] = {0}, s[K];
    int64_t ids[K];
    CHECK(vector_index_add(ix, NULL, &id, zero, 1, &err) == TL_ERR_INVALID);
    CHECK(vector_index_search(ix, zero, 1, K, NULL, s, ids, &err) == TL_ERR_INVALID);
    CHECK(vector_index_search(ix, base, 1, 0, NULL, s, ids, &err) == TL_ERR_INVALID);
    CHECK(!vector_index_search(ix, base, 1, K, NULL, s, ids, &err) && ids[0] == -1);
    vector_index_free(ix);
}

int main(void) {
    base = malloc(sizeof(float) * N * DIM);
    queries = malloc(sizeof(float) * NQ * DIM);
    random_unit_vectors(base, N);
    random_unit_vectors(queries, NQ);
    RUN(flat_equals_brute_force);
    RUN(ivf_recall_at_recommended_nprobe);
    RUN(ivf_unfiltered_equals_merged_categories);
    RUN(remove_and_upsert);
    RUN(save_load_round_trip);
    RUN(other_factories_search);
    RUN(stored_vectors);
    RUN(bad_input_is_an_error);
    free(base);
    free(queries);
    return th_done();
}
