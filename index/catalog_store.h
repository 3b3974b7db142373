/* The product catalogue in SQLite: one row per product (id, sku, title, description, category,
 * subcategory, image path, attributes as JSON text, embedding version). Writable stores use WAL;
 * catalog_store_seal makes the file self-contained for an immutable index directory.
 * Not for: parsing catalogue files (catalog_parse.h) or vectors (vector_index.h).
 * A store may be used from several threads (SQLite's serialized mode). */
#ifndef TL_CATALOG_STORE_H
#define TL_CATALOG_STORE_H

#include <stdint.h>

#include "error.h"

typedef struct catalog_product {
    int64_t id;
    char *sku, *title, *description, *category, *subcategory;
    char *image_path; /* absolute, or relative to the catalogue file it came from */
    char *attributes; /* JSON object text; "{}" when none */
    int embedding_version;
} catalog_product;

/* Frees the strings of p (not p itself) and zeroes it. */
void catalog_product_clear(catalog_product *p);

typedef struct catalog_store catalog_store;

enum { CATALOG_READ_ONLY = 1 }; /* opened immutable: no locks, no -wal/-shm files */

/* Opens or creates the catalogue at path. *out is owned by the caller (catalog_store_close). */
tl_status catalog_store_open(catalog_store **out, const char *path, int flags, tl_error *err);
void catalog_store_close(catalog_store *s);

/* Inserts or replaces the product with p->id. NULL strings are stored as "" (attributes "{}"). */
tl_status catalog_upsert(catalog_store *s, const catalog_product *p, tl_error *err);

/* Fills *out (strings owned by the caller: catalog_product_clear); TL_ERR_NOT_FOUND if absent. */
tl_status catalog_get(catalog_store *s, int64_t id, catalog_product *out, tl_error *err);

/* Deletes id; *deleted (may be NULL) is 1 when it existed. */
tl_status catalog_delete(catalog_store *s, int64_t id, int *deleted, tl_error *err);

tl_status catalog_count(catalog_store *s, int64_t *count, tl_error *err);

/* Calls visit for every product in id order; p is valid only during the call. A non-zero
 * return from visit stops the walk (catalog_iterate still returns TL_OK). */
typedef int (*catalog_visit_fn)(const catalog_product *p, void *ctx);
tl_status catalog_iterate(catalog_store *s, catalog_visit_fn visit, void *ctx, tl_error *err);

/* Groups writes into one transaction (much faster for bulk loads). */
tl_status catalog_begin(catalog_store *s, tl_error *err);
tl_status catalog_commit(catalog_store *s, tl_error *err);

/* Checkpoints the WAL and switches to a rollback journal so that the database is one file
 * that never changes again when opened CATALOG_READ_ONLY. */
tl_status catalog_store_seal(catalog_store *s, tl_error *err);

#endif
