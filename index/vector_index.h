/* One gallery of L2-normalised embeddings searchable by inner product: a wrapper over faiss's
 * C API with 64-bit product ids, removals, a category filter, save/load and a read-write lock
 * (searches run concurrently; add, remove, train and save are exclusive).
 * Not for: catalogue metadata (catalog_store.h) or index directories (index_dir.h).
 *
 * Category filter: faiss 1.7.3's C API has no SearchParameters/IDSelector for search (only for
 * remove_ids), and 1.7.3's IndexIDMap2 does not translate selector ids anyway, so each category
 * has its own faiss sub-index, all cloned from one trained empty "template" index built from
 * the factory string. A filtered search touches only its category's vectors (exact for Flat,
 * cheaper than filtering a global search); an unfiltered search merges the per-category top-k
 * lists, which for Flat is exactly the global top-k. */
#ifndef TL_VECTOR_INDEX_H
#define TL_VECTOR_INDEX_H

#include <stdint.h>

#include "error.h"

#define VECTOR_INDEX_DEFAULT_FACTORY "IDMap2,Flat"

typedef struct vector_index vector_index;

/* Creates an empty index of dim-wide vectors from a faiss factory string (NULL = the
 * default "IDMap2,Flat"; e.g. "IVF1024,Flat", "IDMap2,HNSW32", "IVF1024,PQ64", "IDMap2,SQ8",
 * "IDMap2,SQfp16"). Metric: inner product. n_threads bounds faiss's OpenMP threads per call
 * (0 = online CPUs). *out is owned by the caller (vector_index_free). */
tl_status vector_index_create(vector_index **out, int dim, const char *factory, int n_threads,
                              tl_error *err);
void vector_index_free(vector_index *ix);

/* 1 when the structure must be trained (IVF, PQ, SQ) before the first add. */
int vector_index_needs_training(vector_index *ix);

/* Trains on n vectors x[n, dim] (normalised internally). Only before the first add. */
tl_status vector_index_train(vector_index *ix, const float *x, int64_t n, tl_error *err);

/* Adds n vectors x[n, dim] under ids, all in one category (NULL or "" = uncategorised).
 * Vectors are L2-normalised here; a zero or non-finite vector is TL_ERR_INVALID. An id already
 * present is replaced (upsert), also when its category changes. */
tl_status vector_index_add(vector_index *ix, const char *category, const int64_t *ids,
                           const float *x, int64_t n, tl_error *err);

/* Removes ids (unknown ids are ignored); *n_removed (may be NULL) counts those removed.
 * Structures without removal (HNSW) give TL_ERR_UNSUPPORTED. */
tl_status vector_index_remove(vector_index *ix, const int64_t *ids, int64_t n, int64_t *n_removed,
                              tl_error *err);

/* Top-k by inner product for nq queries q[nq, dim] (normalised internally). category NULL =
 * all. Writes scores[nq, k] (descending) and ids[nq, k]; slots past the last hit hold id -1
 * and score -INFINITY. Buffers are the caller's. */
tl_status vector_index_search(vector_index *ix, const float *q, int64_t nq, int k,
                              const char *category, float *scores, int64_t *ids, tl_error *err);

/* The stored vector of id into out[dim] (the caller's buffer): what a "more like this" query
 * searches with, without embedding the item again. TL_ERR_NOT_FOUND when id is not in the
 * index; TL_ERR_UNSUPPORTED when the structure keeps no exact vector to give back (PQ or SQ
 * codes, IVF lists without a direct map). */
tl_status vector_index_get(vector_index *ix, int64_t id, float *out, tl_error *err);

/* Sets a search parameter on every sub-index and on those created later: "nprobe" (IVF) or
 * "efSearch" (HNSW). A parameter the structure lacks is TL_ERR_INVALID. */
tl_status vector_index_set_param(vector_index *ix, const char *name, double value, tl_error *err);

int64_t vector_index_count(vector_index *ix);
int vector_index_dim(const vector_index *ix);
/* The factory string; owned by ix. */
const char *vector_index_factory(const vector_index *ix);
/* Vectors in one category (0 when unknown). */
int64_t vector_index_category_count(vector_index *ix, const char *category);

/* Writes the index to path (one file: a small header, the template and every category's
 * faiss index), flushed and fsynced. */
tl_status vector_index_save(vector_index *ix, const char *path, tl_error *err);

enum { VECTOR_INDEX_READ_ONLY = 1 }; /* memory-map IVF lists; add/remove/train refused */

/* Loads a file written by vector_index_save. flags: 0 or VECTOR_INDEX_READ_ONLY. n_threads as
 * in create. *out is owned by the caller. */
tl_status vector_index_load(vector_index **out, const char *path, int flags, int n_threads,
                            tl_error *err);

#endif
