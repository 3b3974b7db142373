/* vector_index under concurrency: 4 search threads (half filtered by category) run while a
 * writer adds new products and removes old ones; no search that started after a removal
 * returned may name the removed id, and every result list stays sorted and well-formed: each
 * score is the cosine of the query and the returned id's own vector, so a scan torn by a
 * concurrent remove (vectors shifted under their ids) is caught even where ThreadSanitizer
 * cannot see into faiss. Two faiss threads, so the unfiltered searches split the sub-indexes
 * over threads. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "harness.h"
#include "vector_index.h"

#define DIM         64
#define N_INITIAL   2000
#define N_ADDED     1000
#define N_IDS       (N_INITIAL + N_ADDED)
#define K           20
#define N_SEARCHERS 4

static float vectors[N_IDS * DIM];
static vector_index *ix;
static atomic_long removal_clock;
static atomic_long removed_at[N_IDS]; /* clock value after the removal returned; 0 = live */
static atomic_int writer_done;
static atomic_long violations, malformed, searches;

static const char *category_of(int id) {
    return id % 3 ? "dresses" : "shoes";
}

static double cosine(const float *a, const float *b) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < DIM; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void *searcher(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    float scores[K];
    int64_t ids[K];
    tl_error err;
    while (!atomic_load(&writer_done)) {
        int q = rand_r(&seed) % N_IDS;
        const char *category = seed % 2 ? "shoes" : NULL;
        long before = atomic_load(&removal_clock);
        if (vector_index_search(ix, vectors + q * DIM, 1, K, category, scores, ids, &err)) {
            atomic_fetch_add(&malformed, 1);
            continue;
        }
        atomic_fetch_add(&searches, 1);
        for (int j = 0; j < K && ids[j] >= 0; j++) {
            long removed = atomic_load(&removed_at[ids[j]]);
            if (removed && removed <= before) atomic_fetch_add(&violations, 1);
            if ((j && scores[j] > scores[j - 1]) || ids[j] >= N_IDS ||
                (category && strcmp(category_of((int)ids[j]), category)) ||
                fabs(scores[j] - cosine(vectors + q * DIM, vectors + ids[j] * DIM)) > 1e-4)
                atomic_fetch_add(&malformed, 1);
        }
    }
    return NULL;
}

static void add_one(int id, tl_error *err) {
    int64_t id64 = id;
    CHECK(!vector_index_add(ix, category_of(id), &id64, vectors + id * DIM, 1, err));
}

static void *writer(void *arg) {
    tl_error err;
    for (int i = 0; i < N_ADDED; i++) {
        add_one(N_INITIAL + i, &err);
        int64_t victim = (int64_t)i * 2; /* removes 0, 2, 4, ... once each */
        int64_t n_removed = 0;
        CHECK(!vector_index_remove(ix, &victim, 1, &n_removed, &err) && n_removed == 1);
        atomic_store(&removed_at[victim], atomic_fetch_add(&removal_clock, 1) + 1);
    }
    atomic_store(&writer_done, 1);
    return NULL;
}

TEST(searches_never_see_removed_ids) {
    tl_error err;
    unsigned seed = 7;
    for (int i = 0; i < N_IDS * DIM; i++) vectors[i] = (float)rand_r(&seed) / RAND_MAX - 0.5f;
    REQUIRE(!vector_index_create(&ix, DIM, NULL, 2, &err));
    for (int i = 0; i < N_INITIAL; i++) add_one(i, &err);
    pthread_t threads[N_SEARCHERS + 1];
    for (int t = 0; t < N_SEARCHERS; t++)
        pthread_create(&threads[t], NULL, searcher, (void *)(uintptr_t)(t + 1));
    pthread_create(&threads[N_SEARCHERS], NULL, writer, NULL);
    for (int t = 0; t <= N_SEARCHERS; t++) pthread_join(threads[t], NULL);
    printf("# %ld searches during %d adds and %d removals\n", (long)atomic_load(&searches), N_ADDED,
           N_ADDED);
    CHECK(atomic_load(&searches) > 100);
    CHECK(atomic_load(&violations) == 0);
    CHECK(atomic_load(&malformed) == 0);
    CHECK(vector_index_count(ix) == N_INITIAL);
    vector_index_free(ix);
}

int main(void) {
    RUN(searches_never_see_removed_ids);
    return th_done();
}
