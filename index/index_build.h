/* The offline index builder: catalogue file -> embeddings (checkpointed, resumable) -> galleries,
 * SQLite catalogue and manifest in a work directory beside the output -> atomic publication.
 * The embedder is a small function table so that the CLI passes the model engine and tests can
 * pass a deterministic fake. Not for: serving or online updates. */
#ifndef TL_INDEX_BUILD_H
#define TL_INDEX_BUILD_H

#include <stdint.h>

#include "catalog_parse.h"
#include "error.h"
#include "image.h"

/* The search spaces (embedding_space.h): XMR holds the xmr_image and xmr_text galleries, TGIR
 * the tgir_target gallery. */
typedef enum embedding_space { SPACE_XMR, SPACE_TGIR, SPACE_COUNT } embedding_space;

typedef struct index_embedder {
    int dim;
    void *ctx;
    /* out[n, dim]; called from the building thread only. Texts are in the XMR space. */
    tl_status (*embed_images)(void *ctx, embedding_space space, const tl_image *images, int n,
                              float *out, tl_error *err);
    tl_status (*embed_texts)(void *ctx, const char *const *texts, int n, float *out, tl_error *err);
    /* 0: an image's TGIR vector is its XMR vector, so images are embedded once. */
    int distinct_spaces;
} index_embedder;

typedef struct index_build_opts {
    const char *catalog;        /* .jsonl / .ndjson / .csv (proto/catalog.md) */
    const char *out_dir;        /* published index directory */
    const char *factory;        /* NULL = "IDMap2,Flat" */
    int nprobe;                 /* IVF lists per query, saved with each gallery; 0 = faiss's */
    const char *model_checksum; /* for the manifest */
    const char *capabilities;   /* for the manifest, e.g. "clip-image,clip-text" */
    int strict;                 /* catalogue problems and undecodable images are fatal */
    int resume;                 /* continue from the work directory's checkpoint */
    int batch;                  /* products per embedding batch; 0 = 16 */
    int n_threads;              /* faiss threads; 0 = online CPUs */
    const index_embedder *embedder;
    /* Optional: progress after each batch, and each catalogue/image problem. */
    void (*on_progress)(int64_t done, int64_t total, void *ctx);
    catalog_issue_fn on_issue;
    void *ctx;
} index_build_opts;

/* The work directory used for out_dir: "<out_dir>.building" (caller frees). */
char *index_build_work_dir(const char *out_dir);

/* Where a build's time went: the embedding stage (decode + model, products embedded by this
 * run; a resumed run skips those already checkpointed) and the index stage (galleries,
 * catalogue, manifest, publication), for items/s per stage. */
typedef struct index_build_stats {
    int64_t products, embedded;
    double embed_s, index_s;
} index_build_stats;

/* Builds and publishes the index; stats (may be NULL) is filled on success. On failure the
 * previously published out_dir is untouched and the work directory is left for --resume. */
tl_status index_build(const index_build_opts *opts, index_build_stats *stats, tl_error *err);

#endif
