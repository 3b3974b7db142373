/* The catalogue as tailord searches it: items (id, sku, title, category, subcategory, image
 * file) and one L2-normalised gallery embedding per item and space (embedding_space.h: XMR
 * images, TGIR targets), searched by inner product with an optional category/subcategory
 * filter. Thread-safe (read-write lock).
 *
 * This first version reads an index directory holding catalog.jsonl (one item per line) and
 * embeds the item images with the model at load time, searching by brute force; it is the
 * seam where index/vector_index.h and index/catalog_store.h plug in. Not for: HTTP. */
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

typedef struct search_filter {
    const char *category, *subcategory; /* NULL = any */
    int64_t exclude_id;                 /* -1 = none (item_id searches exclude the item) */
} search_filter;

/* Opens index_dir/catalog.jsonl and embeds every item image with model (used only during the
 * call). max_pixels bounds decoded images. *out is owned by the caller. */
tl_status search_service_open(search_service **out, const char *index_dir, tl_model *model,
                              size_t max_pixels, tl_error *err);
void search_service_free(search_service *s);

int64_t search_service_count(search_service *s);
int search_service_dim(const search_service *s);
/* {"items", "dim", "categories", "journal_entries", "index_dir"}; new reference. */
json_t *search_service_manifest(search_service *s);

/* Copies item id's gallery embedding in space into out[dim]. TL_ERR_NOT_FOUND for unknown
 * ids. */
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
 * index_dir/uploads/ID.img and the change is journalled (fsynced) in index_dir/journal.jsonl
 * before it is visible. item->image_path is ignored; strings are copied. */
tl_status search_service_upsert(search_service *s, const catalogue_item *item, const uint8_t *image,
                                size_t image_len, const float *const embeddings[SPACE_COUNT],
                                tl_error *err);
/* Removes item id, journalled. TL_ERR_NOT_FOUND when absent. */
tl_status search_service_remove(search_service *s, int64_t id, tl_error *err);

#endif
