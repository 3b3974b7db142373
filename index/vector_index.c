/* The faiss-backed gallery: per-category sub-indexes cloned from a trained template, an id ->
 * category map, result merging, the gallery file format and the read-write lock.
 * Not for: choosing factory strings (the caller does) or metadata. */
#include "vector_index.h"

#include <cblas.h>
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/clone_index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/impl/AuxIndexStructures_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <faiss/c_api/utils/distances_c.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flat_scan.h"
#include "id_map.h"

/* faiss's C++ IO_FLAG_MMAP (index_io.h): IVF lists are mapped read-only from the file. The C
 * header's FAISS_IO_FLAG_MMAP (1) does not match the 1.7.3 library's value. */
#define FAISS_CXX_IO_FLAG_MMAP (8 | 0x646f0000)
#define GALLERY_MAGIC          "TLVIDX01"
#define MAX_FACTORY            128
#define MAX_CATEGORY           256

typedef struct category_index {
    char *name;
    FaissIndex *index;
} category_index;

struct vector_index {
    int dim, n_threads, read_only;
    char factory[MAX_FACTORY];
    double nprobe, ef_search; /* 0 = faiss's default */
    FaissIndex *template_index;
    category_index *categories;
    int n_categories, categories_capacity;
    id_map id_category; /* product id -> position in categories */
    pthread_rwlock_t lock;
};

static tl_status faiss_failed(tl_error *err, const char *what) {
    const char *msg = faiss_get_last_error();
    return tl_fail(err, TL_ERR_UNSUPPORTED, "faiss %s: %s", what, msg ? msg : "unknown error");
}

/* Bounds the OpenMP team of the faiss call that follows on this thread (the limit is a
 * per-thread setting in libgomp, so it is set before each call). */
static void bound_threads(const vector_index *ix) {
    omp_set_num_threads(ix->n_threads);
}

/* Debian's libfaiss is built for baseline x86-64, where faiss's per-vector inner product is a
 * scalar loop; below its BLAS threshold (20 queries) a flat scan of 100k vectors was compute
 * bound at about 27 ms. OpenBLAS's sgemm is vectorised, so every exhaustive search uses it:
 * flat_scan, and faiss's own search of flat indexes flat_scan cannot view (e.g. "IDMap,Flat").
 * One OpenBLAS thread per caller, as in the model's kernels: the searches bring their own threads,
 * and OpenBLAS's on top oversubscribed the cores (100k flat, batch 1: p50 20.6 against 11.1 ms). */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void use_blas_always(void) {
    faiss_set_distance_compute_blas_threshold(1);
}

static vector_index *vector_index_alloc(int dim, const char *factory, int n_threads) {
    pthread_once(&blas_once, use_blas_always);
    vector_index *ix = calloc(1, sizeof *ix);
    if (!ix) return NULL;
    ix->dim = dim;
    ix->n_threads = n_threads > 0 ? n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(ix->factory, sizeof ix->factory, "%s", factory);
    /* glibc's default rwlock prefers readers: a steady stream of searches would starve
     * add/remove forever. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&ix->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    return ix;
}

tl_status vector_index_create(vector_index **out, int dim, const char *factory, int n_threads,
                              tl_error *err) {
    *out = NULL;
    if (!factory) factory = VECTOR_INDEX_DEFAULT_FACTORY;
    if (dim <= 0 || strlen(factory) >= MAX_FACTORY)
        return tl_fail(err, TL_ERR_INVALID, "vector index: bad dim %d or factory '%s'", dim,
                       factory);
    vector_index *ix = vector_index_alloc(dim, factory, n_threads);
    if (!ix) return tl_fail(err, TL_ERR_NOMEM, "vector index: out of memory");
    if (faiss_index_factory(&ix->template_index, dim, factory, METRIC_INNER_PRODUCT)) {
        tl_status st = faiss_failed(err, "index_factory");
        vector_index_free(ix);
        tl_error_prefix(err, "factory '%s'", factory);
        return st;
    }
    *out = ix;
    return TL_OK;
}

void vector_index_free(vector_index *ix) {
    if (!ix) return;
    for (int i = 0; i < ix->n_categories; i++) {
        free(ix->categories[i].name);
        faiss_Index_free(ix->categories[i].index);
    }
    free(ix->categories);
    if (ix->template_index) faiss_Index_free(ix->template_index);
    id_map_free(&ix->id_category);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

static int find_category(const vector_index *ix, const char *name) {
    for (int i = 0; i < ix->n_categories; i++)
        if (!strcmp(ix->categories[i].name, name)) return i;
    return -1;
}

static tl_status apply_params(const vector_index *ix, FaissIndex *index, tl_error *err) {
    const char *names[2] = {"nprobe", "efSearch"};
    const double values[2] = {ix->nprobe, ix->ef_search};
    FaissParameterSpace *space;
    if (faiss_ParameterSpace_new(&space)) return faiss_failed(err, "ParameterSpace");
    tl_status st = TL_OK;
    for (int i = 0; i < 2 && !st; i++)
        if (values[i] > 0 &&
            faiss_ParameterSpace_set_index_parameter(space, index, names[i], values[i]))
            st = tl_fail(err, TL_ERR_INVALID, "index '%s' has no parameter %s: %s", ix->factory,
                         names[i], faiss_get_last_error());
    faiss_ParameterSpace_free(space);
    return st;
}

/* Returns the position of category name, creating its sub-index from the template. */
static tl_status category_slot(vector_index *ix, const char *name, int *slot, tl_error *err) {
    if ((*slot = find_category(ix, name)) >= 0) return TL_OK;
    if (strlen(name) >= MAX_CATEGORY)
        return tl_fail(err, TL_ERR_INVALID, "category name longer than %d bytes", MAX_CATEGORY);
    if (ix->n_categories == ix->categories_capacity) {
        int capacity = ix->categories_capacity ? 2 * ix->categories_capacity : 8;
        category_index *grown = realloc(ix->categories, capacity * sizeof *grown);
        if (!grown) return tl_fail(err, TL_ERR_NOMEM, "vector index: out of memory");
        ix->categories = grown;
        ix->categories_capacity = capacity;
    }
    category_index c = {.name = strdup(name)};
    if (!c.name) return tl_fail(err, TL_ERR_NOMEM, "vector index: out of memory");
    if (faiss_clone_index(ix->template_index, &c.index)) {
        free(c.name);
        return faiss_failed(err, "clone_index");
    }
    tl_status st = apply_params(ix, c.index, err);
    if (st) {
        free(c.name);
        faiss_Index_free(c.index);
        return st;
    }
    *slot = ix->n_categories;
    ix->categories[ix->n_categories++] = c;
    return TL_OK;
}

/* A normalised copy of x[n, dim] (caller frees), or an error for zero/non-finite rows. */
static tl_status normalised_copy(const float *x, int64_t n, int dim, float **out, tl_error *err) {
    float *y = malloc((size_t)n * dim * sizeof *y);
    if (!y) return tl_fail(err, TL_ERR_NOMEM, "vector index: out of memory");
    for (int64_t i = 0; i < n; i++) {
        const float *row = x + i * dim;
        double sum = 0;
        for (int j = 0; j < dim; j++) sum += (double)row[j] * row[j];
        if (!(sum > 0) || !isfinite(sum)) {
            free(y);
            return tl_fail(err, TL_ERR_INVALID, "vector %lld is zero or not finite", (long long)i);
        }
        float inv = (float)(1.0 / sqrt(sum));
        for (int j = 0; j < dim; j++) y[i * dim + j] = row[j] * inv;
    }
    *out = y;
    return TL_OK;
}

int vector_index_needs_training(vector_index *ix) {
    pthread_rwlock_rdlock(&ix->lock);
    int needs = !faiss_Index_is_trained(ix->template_index);
    pthread_rwlock_unlock(&ix->lock);
    return needs;
}

static tl_status check_writable(const vector_index *ix, tl_error *err) {
    if (ix->read_only) return tl_fail(err, TL_ERR_UNSUPPORTED, "vector index was loaded read-only");
    return TL_OK;
}

tl_status vector_index_train(vector_index *ix, const float *x, int64_t n, tl_error *err) {
    float *y;
    tl_status st = check_writable(ix, err);
    if (st || (st = normalised_copy(x, n, ix->dim, &y, err))) return st;
    pthread_rwlock_wrlock(&ix->lock);
    if (ix->n_categories)
        st = tl_fail(err, TL_ERR_INVALID, "vector index: train before the first add");
    bound_threads(ix);
    if (!st && faiss_Index_train(ix->template_index, n, y)) st = faiss_failed(err, "train");
    pthread_rwlock_unlock(&ix->lock);
    free(y);
    return st;
}

tl_status vector_index_get(vector_index *ix, int64_t id, float *out, tl_error *err) {
    /* Quantised codes decode to approximations; a query must be the exact stored vector. */
    if (strstr(ix->factory, "PQ") || strstr(ix->factory, "SQ") || strstr(ix->factory, "LSH"))
        return tl_fail(err, TL_ERR_UNSUPPORTED, "%s keeps no exact vectors", ix->factory);
    int32_t slot;
    tl_status st = TL_OK;
    pthread_rwlock_rdlock(&ix->lock);
    if (!id_map_get(&ix->id_category, id, &slot))
        st = tl_fail(err, TL_ERR_NOT_FOUND, "id %lld is not in the index", (long long)id);
    else if (faiss_Index_reconstruct(ix->categories[slot].index, id, out))
        st = faiss_failed(err, "reconstruct");
    pthread_rwlock_unlock(&ix->lock);
    return st;
}

/* Removes one id from its sub-index and the map (write lock held). */
static tl_status remove_one(vector_index *ix, int64_t id, int *removed, tl_error *err) {
    int32_t slot;
    *removed = 0;
    if (!id_map_get(&ix->id_category, id, &slot)) return TL_OK;
    FaissIDSelectorBatch *sel;
    if (faiss_IDSelectorBatch_new(&sel, 1, &id)) return faiss_failed(err, "IDSelectorBatch");
    size_t n_removed = 0;
    int rc = faiss_Index_remove_ids(ix->categories[slot].index, (FaissIDSelector *)sel, &n_removed);
    faiss_IDSelector_free((FaissIDSelector *)sel);
    if (rc) return faiss_failed(err, "remove_ids");
    id_map_remove(&ix->id_category, id);
    *removed = n_removed > 0;
    return TL_OK;
}

static tl_status add_locked(vector_index *ix, const char *category, const int64_t *ids,
                            const float *y, int64_t n, tl_error *err) {
    if (!faiss_Index_is_trained(ix->template_index))
        return tl_fail(err, TL_ERR_INVALID, "index '%s' must be trained before adding",
                       ix->factory);
    int slot, removed;
    tl_status st = category_slot(ix, category ? category : "", &slot, err);
    for (int64_t i = 0; i < n && !st; i++) st = remove_one(ix, ids[i], &removed, err);
    if (st) return st;
    bound_threads(ix);
    if (faiss_Index_add_with_ids(ix->categories[slot].index, n, y, ids))
        return faiss_failed(err, "add_with_ids");
    for (int64_t i = 0; i < n && !st; i++) st = id_map_put(&ix->id_category, ids[i], slot, err);
    return st;
}

tl_status vector_index_add(vector_index *ix, const char *category, const int64_t *ids,
                           const float *x, int64_t n, tl_error *err) {
    float *y;
    tl_status st = check_writable(ix, err);
    if (st || (st = normalised_copy(x, n, ix->dim, &y, err))) return st;
    pthread_rwlock_wrlock(&ix->lock);
    st = add_locked(ix, category, ids, y, n, err);
    pthread_rwlock_unlock(&ix->lock);
    free(y);
    return st;
}

tl_status vector_index_remove(vector_index *ix, const int64_t *ids, int64_t n, int64_t *n_removed,
                              tl_error *err) {
    tl_status st = check_writable(ix, err);
    int64_t total = 0;
    pthread_rwlock_wrlock(&ix->lock);
    for (int64_t i = 0; i < n && !st; i++) {
        int removed;
        st = remove_one(ix, ids[i], &removed, err);
        total += removed;
    }
    pthread_rwlock_unlock(&ix->lock);
    if (n_removed) *n_removed = total;
    return st;
}

/* Merges the sorted list (s2, i2) into the sorted list (s1, i1), both of length k; s and id
 * are scratch space for k entries. */
static void merge_top_k(float *s1, int64_t *i1, const float *s2, const int64_t *i2, int k, float *s,
                        int64_t *id) {
    int a = 0, b = 0;
    for (int j = 0; j < k; j++) {
        int take_b = i2[b] >= 0 && (i1[a] < 0 || s2[b] > s1[a]);
        s[j] = take_b ? s2[b] : s1[a];
        id[j] = take_b ? i2[b++] : i1[a++];
    }
    memcpy(s1, s, k * sizeof *s);
    memcpy(i1, id, k * sizeof *id);
}

static void fill_empty(float *scores, int64_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        scores[i] = -INFINITY;
        ids[i] = -1;
    }
}

/* A coarse assignment shared by the IVF sub-indexes, which are clones of one trained template
 * and so have the same centroids: the template's quantizer is searched once per query instead
 * of once per category, and by flat_scan (faiss's own search allocates a 16 MiB block per call
 * and packs the centroids for a one-query product). */
typedef struct coarse_assignment {
    int64_t *lists;   /* [nq, nprobe] */
    float *distances; /* [nq, nprobe] */
} coarse_assignment;

/* Searches category position `slot` (through the coarse assignment when there is one) with up
 * to `threads` OpenMP threads into the temporary buffers and merges into the result. */
static tl_status search_category(vector_index *ix, int slot, const float *y, int64_t nq, int k,
                                 int threads, const coarse_assignment *coarse, float *scores,
                                 int64_t *ids, float *tmp_s, int64_t *tmp_i, tl_error *err) {
    FaissIndex *index = ix->categories[slot].index;
    if (faiss_Index_ntotal(index) == 0) return TL_OK;
    omp_set_num_threads(threads);
    flat_view flat;
    if (!coarse && flat_view_of(index, ix->dim, &flat)) {
        tl_status st = flat_scan(&flat, y, nq, k, tmp_s, tmp_i, err);
        if (st) return st;
    } else if (coarse ? faiss_IndexIVF_search_preassigned(faiss_IndexIVF_cast(index), nq, y, k,
                                                          coarse->lists, coarse->distances, tmp_s,
                                                          tmp_i, 0)
                      : faiss_Index_search(index, nq, y, k, tmp_s, tmp_i))
        return faiss_failed(err, "search");
    for (int64_t q = 0; q < nq; q++)
        merge_top_k(scores + q * k, ids + q * k, tmp_s + q * k, tmp_i + q * k, k, tmp_s + nq * k,
                    tmp_i + nq * k);
    return TL_OK;
}

/* The template's nprobe when every sub-index is an IVF with that same nprobe (so one coarse
 * assignment fits them all); 0 otherwise. */
static size_t shared_nprobe(const vector_index *ix) {
    FaissIndexIVF *template_ivf = faiss_IndexIVF_cast(ix->template_index);
    if (!template_ivf) return 0;
    size_t nprobe = faiss_IndexIVF_nprobe(template_ivf);
    for (int i = 0; i < ix->n_categories; i++) {
        FaissIndexIVF *ivf = faiss_IndexIVF_cast(ix->categories[i].index);
        if (!ivf || faiss_IndexIVF_nprobe(ivf) != nprobe) return 0;
    }
    return nprobe;
}

/* Fills coarse (allocated here; the caller frees both arrays) for nq queries, or leaves it
 * empty when the sub-indexes are not IVF. */
static tl_status assign_coarse(vector_index *ix, const float *y, int64_t nq,
                               coarse_assignment *coarse, tl_error *err) {
    *coarse = (coarse_assignment){0};
    size_t nprobe = shared_nprobe(ix);
    if (!nprobe) return TL_OK;
    coarse->lists = malloc((size_t)nq * nprobe * sizeof *coarse->lists);
    coarse->distances = malloc((size_t)nq * nprobe * sizeof *coarse->distances);
    if (!coarse->lists || !coarse->distances)
        return tl_fail(err, TL_ERR_NOMEM, "search: out of memory");
    FaissIndex *quantizer = faiss_IndexIVF_quantizer(faiss_IndexIVF_cast(ix->template_index));
    flat_view flat;
    if (flat_view_of(quantizer, ix->dim, &flat))
        return flat_scan(&flat, y, nq, (int)nprobe, coarse->distances, coarse->lists, err);
    omp_set_num_threads(ix->n_threads);
    if (faiss_Index_search(quantizer, nq, y, (int64_t)nprobe, coarse->distances, coarse->lists))
        return faiss_failed(err, "coarse search");
    return TL_OK;
}

/* An unfiltered search scans every sub-index, single-threaded each (flat_scan, or faiss with one
 * OpenMP thread); the sub-indexes are split over up to n_threads threads, each merging its
 * share, and the shares are merged in thread order. */
#define MAX_SEARCH_THREADS 16

typedef struct search_share {
    vector_index *ix;
    const float *y;
    int64_t nq;
    int k;
    const coarse_assignment *coarse; /* NULL: each sub-index assigns its own lists */
    const uint8_t *mine;             /* [n_categories]: the sub-indexes of this share */
    float *scores, *tmp_s;
    int64_t *ids, *tmp_i;
    tl_status st;
    tl_error err;
} search_share;

static void *search_share_run(void *arg) {
    search_share *sh = arg;
    fill_empty(sh->scores, sh->ids, (size_t)sh->nq * sh->k);
    for (int i = 0; i < sh->ix->n_categories && !sh->st; i++)
        if (sh->mine[i])
            sh->st = search_category(sh->ix, i, sh->y, sh->nq, sh->k, 1, sh->coarse, sh->scores,
                                     sh->ids, sh->tmp_s, sh->tmp_i, &sh->err);
    return NULL;
}

/* Each sub-index goes to the share with the fewest vectors so far (largest first), so the
 * shares scan about the same number of bytes. owner[n_categories]; returns the shares used. */
static int assign_shares(vector_index *ix, int n_shares, uint8_t *owner) {
    int64_t load[MAX_SEARCH_THREADS] = {0};
    uint8_t *done = calloc(ix->n_categories, 1);
    if (!done) return 1;
    for (int c = 0; c < ix->n_categories; c++) {
        int big = -1;
        for (int i = 0; i < ix->n_categories; i++)
            if (!done[i] && (big < 0 || faiss_Index_ntotal(ix->categories[i].index) >
                                            faiss_Index_ntotal(ix->categories[big].index)))
                big = i;
        int least = 0;
        for (int t = 1; t < n_shares; t++)
            if (load[t] < load[least]) least = t;
        owner[big] = (uint8_t)least;
        load[least] += faiss_Index_ntotal(ix->categories[big].index);
        done[big] = 1;
    }
    free(done);
    return n_shares;
}

/* The unfiltered search over n_shares threads (read lock held). Results as
 * vector_index_search. */
static tl_status search_parallel(vector_index *ix, const float *y, int64_t nq, int k, int n_shares,
                                 const coarse_assignment *coarse, float *scores, int64_t *ids,
                                 tl_error *err) {
    size_t per = (size_t)nq * k, tmp = (size_t)(nq + 1) * k;
    search_share sh[MAX_SEARCH_THREADS];
    pthread_t threads[MAX_SEARCH_THREADS];
    uint8_t *owner = malloc(ix->n_categories), *mine = malloc((size_t)n_shares * ix->n_categories);
    float *fbuf = malloc((size_t)n_shares * (per + tmp) * sizeof *fbuf);
    int64_t *ibuf = malloc((size_t)n_shares * (per + tmp) * sizeof *ibuf);
    tl_status st =
        owner && mine && fbuf && ibuf ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "search: out of memory");
    if (!st) n_shares = assign_shares(ix, n_shares, owner);
    int started = 0;
    for (int t = 0; t < n_shares && !st; t++) {
        for (int i = 0; i < ix->n_categories; i++) mine[t * ix->n_categories + i] = owner[i] == t;
        sh[t] = (search_share){.ix = ix,
                               .y = y,
                               .nq = nq,
                               .k = k,
                               .coarse = coarse,
                               .mine = mine + t * ix->n_categories,
                               .scores = fbuf + t * (per + tmp),
                               .tmp_s = fbuf + t * (per + tmp) + per,
                               .ids = ibuf + t * (per + tmp),
                               .tmp_i = ibuf + t * (per + tmp) + per};
    }
    /* Share 0 runs here; a share whose thread cannot start runs here too. */
    for (int t = 1; t < n_shares && !st; t++)
        if (pthread_create(&threads[t], NULL, search_share_run, &sh[t]))
            search_share_run(&sh[t]);
        else
            started |= 1 << t;
    if (!st) search_share_run(&sh[0]);
    for (int t = 1; t < n_shares && !st; t++)
        if (started & (1 << t)) pthread_join(threads[t], NULL);
    for (int t = 0; t < n_shares && !st; t++) {
        if (sh[t].st) {
            *err = sh[t].err;
            st = sh[t].st;
        }
        for (int64_t q = 0; q < nq && !st; q++)
            merge_top_k(scores + q * k, ids + q * k, sh[t].scores + q * k, sh[t].ids + q * k, k,
                        sh[0].tmp_s, sh[0].tmp_i);
    }
    free(owner);
    free(mine);
    free(fbuf);
    free(ibuf);
    return st;
}

tl_status vector_index_search(vector_index *ix, const float *q, int64_t nq, int k,
                              const char *category, float *scores, int64_t *ids, tl_error *err) {
    if (k <= 0 || nq < 0) return tl_fail(err, TL_ERR_INVALID, "search: k must be positive");
    /* Per-category results for all queries, then k entries of merge scratch. */
    float *y, *tmp_s = malloc((size_t)(nq + 1) * k * sizeof *tmp_s);
    int64_t *tmp_i = malloc((size_t)(nq + 1) * k * sizeof *tmp_i);
    tl_status st = tmp_s && tmp_i ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "search: out of memory");
    if (!st) st = normalised_copy(q, nq, ix->dim, &y, err);
    if (st) {
        free(tmp_s);
        free(tmp_i);
        return st;
    }
    fill_empty(scores, ids, (size_t)nq * k);
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1); /* process-wide; see above */
    coarse_assignment coarse = {0};
    pthread_rwlock_rdlock(&ix->lock);
    int n_shares = ix->n_threads < ix->n_categories ? ix->n_threads : ix->n_categories;
    if (n_shares > MAX_SEARCH_THREADS) n_shares = MAX_SEARCH_THREADS;
    if (category ? find_category(ix, category) >= 0 : ix->n_categories > 0)
        st = assign_coarse(ix, y, nq, &coarse, err);
    const coarse_assignment *shared = coarse.lists ? &coarse : NULL;
    if (!st && !category && n_shares > 1)
        st = search_parallel(ix, y, nq, k, n_shares, shared, scores, ids, err);
    else
        for (int i = 0; i < ix->n_categories && !st; i++)
            if (!category || !strcmp(category, ix->categories[i].name))
                st = search_category(ix, i, y, nq, k, nq < ix->n_threads ? (int)nq : ix->n_threads,
                                     shared, scores, ids, tmp_s, tmp_i, err);
    pthread_rwlock_unlock(&ix->lock);
    free(coarse.lists);
    free(coarse.distances);
    free(y);
    free(tmp_s);
    free(tmp_i);
    return st;
}

tl_status vector_index_set_param(vector_index *ix, const char *name, double value, tl_error *err) {
    pthread_rwlock_wrlock(&ix->lock);
    double saved_nprobe = ix->nprobe, saved_ef = ix->ef_search;
    tl_status st = TL_OK;
    if (!strcmp(name, "nprobe"))
        ix->nprobe = value;
    else if (!strcmp(name, "efSearch"))
        ix->ef_search = value;
    else
        st = tl_fail(err, TL_ERR_INVALID, "unknown search parameter '%s'", name);
    if (!st) st = apply_params(ix, ix->template_index, err);
    for (int i = 0; i < ix->n_categories && !st; i++)
        st = apply_params(ix, ix->categories[i].index, err);
    if (st) {
        ix->nprobe = saved_nprobe;
        ix->ef_search = saved_ef;
    }
    pthread_rwlock_unlock(&ix->lock);
    return st;
}

int64_t vector_index_count(vector_index *ix) {
    pthread_rwlock_rdlock(&ix->lock);
    int64_t n = (int64_t)ix->id_category.count;
    pthread_rwlock_unlock(&ix->lock);
    return n;
}

int vector_index_dim(const vector_index *ix) {
    return ix->dim;
}

const char *vector_index_factory(const vector_index *ix) {
    return ix->factory;
}

int64_t vector_index_category_count(vector_index *ix, const char *category) {
    pthread_rwlock_rdlock(&ix->lock);
    int slot = find_category(ix, category);
    int64_t n = slot < 0 ? 0 : faiss_Index_ntotal(ix->categories[slot].index);
    pthread_rwlock_unlock(&ix->lock);
    return n;
}

/* Gallery file: magic, u32 dim, u32 n_categories, u32 factory length, factory bytes, the
 * template's faiss index, per category u32 name length, name bytes and its faiss index, then
 * the id table: u64 count and count id_entry records (product id -> category position). */
struct id_entry {
    int64_t id;
    int64_t slot;
};

static int write_id_table(const id_map *m, FILE *f) {
    uint64_t n = m->count;
    if (fwrite(&n, 8, 1, f) != 1) return 0;
    for (size_t i = 0; i < m->capacity; i++) {
        struct id_entry e = {m->keys[i], m->values[i]};
        if (m->used[i] && fwrite(&e, sizeof e, 1, f) != 1) return 0;
    }
    return 1;
}

static int write_string(FILE *f, const char *s) {
    uint32_t len = (uint32_t)strlen(s);
    return fwrite(&len, 4, 1, f) == 1 && fwrite(s, 1, len, f) == len;
}

static tl_status write_gallery(const vector_index *ix, FILE *f, tl_error *err) {
    uint32_t header[2] = {(uint32_t)ix->dim, (uint32_t)ix->n_categories};
    if (fwrite(GALLERY_MAGIC, 8, 1, f) != 1 || fwrite(header, 4, 2, f) != 2 ||
        !write_string(f, ix->factory))
        return tl_fail(err, TL_ERR_IO, "write failed");
    if (faiss_write_index(ix->template_index, f)) return faiss_failed(err, "write_index");
    for (int i = 0; i < ix->n_categories; i++) {
        if (!write_string(f, ix->categories[i].name))
            return tl_fail(err, TL_ERR_IO, "write failed");
        if (faiss_write_index(ix->categories[i].index, f)) return faiss_failed(err, "write_index");
    }
    if (!write_id_table(&ix->id_category, f)) return tl_fail(err, TL_ERR_IO, "write failed");
    if (fflush(f) || fsync(fileno(f))) return tl_fail(err, TL_ERR_IO, "flush/fsync failed");
    return TL_OK;
}

tl_status vector_index_save(vector_index *ix, const char *path, tl_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return tl_fail(err, TL_ERR_IO, "cannot create %s", path);
    /* A write lock, not a read lock: saving must not interleave with an upsert. */
    pthread_rwlock_wrlock(&ix->lock);
    tl_status st = write_gallery(ix, f, err);
    pthread_rwlock_unlock(&ix->lock);
    if (fclose(f) && !st) st = tl_fail(err, TL_ERR_IO, "close failed");
    return st ? tl_error_prefix(err, "%s", path) : TL_OK;
}

/* Reads a u32-length-prefixed string of at most max-1 bytes into buf. */
static int read_string(FILE *f, char *buf, size_t max) {
    uint32_t len;
    if (fread(&len, 4, 1, f) != 1 || len >= max || fread(buf, 1, len, f) != len) return 0;
    buf[len] = 0;
    return 1;
}

static tl_status read_categories(vector_index *ix, FILE *f, uint32_t n, int io_flags,
                                 tl_error *err) {
    char name[MAX_CATEGORY];
    for (uint32_t i = 0; i < n; i++) {
        int slot;
        FaissIndex *index;
        if (!read_string(f, name, sizeof name) || find_category(ix, name) >= 0)
            return tl_fail(err, TL_ERR_FORMAT, "bad category %u", i);
        if (faiss_read_index(f, io_flags, &index)) return faiss_failed(err, "read_index");
        tl_status st = category_slot(ix, name, &slot, err);
        if (st) {
            faiss_Index_free(index);
            return st;
        }
        faiss_Index_free(ix->categories[slot].index);
        ix->categories[slot].index = index;
        if ((st = apply_params(ix, index, err))) return st;
    }
    return TL_OK;
}

/* Reads the id table and checks it against the sub-indexes' sizes. */
static tl_status read_id_table(vector_index *ix, FILE *f, tl_error *err) {
    uint64_t n;
    if (fread(&n, 8, 1, f) != 1) return tl_fail(err, TL_ERR_FORMAT, "truncated id table");
    int64_t *per_category = calloc(ix->n_categories + 1, sizeof *per_category);
    tl_status st = per_category ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n && !st; i++) {
        struct id_entry e;
        if (fread(&e, sizeof e, 1, f) != 1 || e.slot < 0 || e.slot >= ix->n_categories)
            st = tl_fail(err, TL_ERR_FORMAT, "bad id table entry %llu", (unsigned long long)i);
        else if (!(st = id_map_put(&ix->id_category, e.id, e.slot, err)))
            per_category[e.slot]++;
    }
    for (int i = 0; i < ix->n_categories && !st; i++)
        if (per_category[i] != faiss_Index_ntotal(ix->categories[i].index))
            st = tl_fail(err, TL_ERR_FORMAT, "id table disagrees with category '%s'",
                         ix->categories[i].name);
    if (!st && ix->id_category.count != n)
        st = tl_fail(err, TL_ERR_FORMAT, "duplicate ids in the id table");
    free(per_category);
    return st;
}

static tl_status read_gallery(vector_index **out, FILE *f, int flags, int n_threads,
                              tl_error *err) {
    char magic[8], factory[MAX_FACTORY];
    uint32_t header[2];
    if (fread(magic, 8, 1, f) != 1 || memcmp(magic, GALLERY_MAGIC, 8) ||
        fread(header, 4, 2, f) != 2 || !read_string(f, factory, sizeof factory) || header[0] == 0 ||
        header[0] > 65536)
        return tl_fail(err, TL_ERR_FORMAT, "not a Tailor gallery file");
    vector_index *ix = vector_index_alloc((int)header[0], factory, n_threads);
    if (!ix) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    int io_flags = (flags & VECTOR_INDEX_READ_ONLY) ? FAISS_CXX_IO_FLAG_MMAP : 0;
    tl_status st = TL_OK;
    if (faiss_read_index(f, 0, &ix->template_index)) st = faiss_failed(err, "read_index");
    if (!st) st = read_categories(ix, f, header[1], io_flags, err);
    if (!st) st = read_id_table(ix, f, err);
    ix->read_only = flags & VECTOR_INDEX_READ_ONLY;
    if (st)
        vector_index_free(ix);
    else
        *out = ix;
    return st;
}

tl_status vector_index_load(vector_index **out, const char *path, int flags, int n_threads,
                            tl_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "cannot open %s", path);
    tl_status st = read_gallery(out, f, flags, n_threads, err);
    fclose(f);
    return st ? tl_error_prefix(err, "%s", path) : TL_OK;
}
