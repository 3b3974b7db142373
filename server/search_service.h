/* The catalogue as tailord searches it: an index directory written by `tailor index build`
 * (index/index_dir.h: SQLite catalogue, one faiss gallery per space of embedding_space.h, XMR
 * images and TGIR targets), searched by inner product with an optional category (the
 * galleries' category sub-indexes) and subcategory filter, plus the online admin changes,
 * journalled in a separate state directory and replayed at open. Thread-safe (read-write
 * locks). Not for: building index directories (index_build.h) or HTTP. */
#ifndef TAILORD_SEARCH_SERVICE_H
#define TAILORD_SEARCH_SERVICE_H

#include <jansson.h>
#include <stdint.h>

#include "embedding_space.h"
#include "error.h"
#include "tailor_model.h"

typedef struct search_service search_service;

typedef struct catalogue_item {
    int64_t id;
    const char *sku, *title, *category, *subcategory;
    const char *image_path; /* absolute or relative to the index directory */
} catalogue_item;

typedef struct search_service_paths {
    const char *index_dir; /* immutable, from `tailor index build` */
    const char *state_dir; /* journal.jsonl and uploads/ of the admin changes; created */
    const char *model_dir; /* the served checkpoint, checked against the manifest */
} search_service_paths;

typedef struct search_filter {
    const char *category, *subcategory; /* NULL = any */
    int64_t exclude_id;                 /* -1 = none (item_id searches exclude the item) */
} search_filter;

/* Opens the index directory after verifying its manifest (checksums, counts, and the model:
 * a directory built for another width or checkpoint is TL_ERR_INVALID) and replays the state
 * directory's journal. model (borrowed; it must outlive s) embeds items for item queries;
 * max_pixels bounds their decoded images; threads bounds faiss's. *out is the caller's. */
tl_status search_service_open(search_service **out, const search_service_paths *paths,
                              tl_model *model, size_t max_pixels, int threads, tl_error *err);
void search_service_free(search_service *s);

int64_t search_service_count(search_service *s);
int search_service_dim(const search_service *s);
/* {"items", "dim", "categories", "journal_entries", "index_dir", "state_dir", "backend",
 * "manifest"}; new reference. */
json_t *search_service_manifest(search_service *s);

/* Item id's gallery embedding in space, out[dim]: the gallery's stored vector, or (structures
 * without exact vectors) embedded from its image with the model: on the model's thread only. TL_ERR_NOT_FOUND for unknown ids. */
tl_status search_service_embedding(search_service *s, embedding_space space, int64_t id, float *out,
                                   tl_error *err);

/* Gallery embeddings of n images in every space: out[SPACE_COUNT, n, dim]. Runs model calls:
 * on the model's thread only. */
tl_status search_service_embed_images(tl_model *model, const tl_image *images, int n, float *out,
                                      tl_error *err);

/* The image file of item id, absolute; caller frees. NULL when the id is unknown. */
char *search_service_image_path(search_service *s, int64_t id);

/* Top results in the gallery of space for query[dim] (any norm) after skipping offset, at most
 * limit, as a JSON array of {id, score, title, category, subcategory, sku, image_url,
 * embedding_version}; version tags each result. New reference. */
json_t *search_service_search(search_service *s, embedding_space space, const float *query,
                              const search_filter *filter, int limit, int offset,
                              const char *version);

/* Adds or replaces an item with its embeddings[space][dim]: its image bytes are written to
 * state_dir/uploads/ID.img and the change is journalled (fsynced) in state_dir/journal.jsonl
 * before it is visible. item->image_path is ignored; strings are copied. */
tl_status search_service_upsert(search_service *s, const catalogue_item *item, const uint8_t *image,
                                size_t image_len, const float *const embeddings[SPACE_COUNT],
                                tl_error *err);
/* Removes item id, journalled. TL_ERR_NOT_FOUND when absent. */
tl_status search_service_remove(search_service *s, int64_t id, tl_error *err);

#endif
