/* Helpers shared by the data set loaders (trainer/dataset_*.c): growing arrays, JSON files
 * with positions in messages, and the finishing pass every loader ends with.
 * Not for: callers of dataset.h. */
#ifndef TL_TRAINER_DATASET_INTERNAL_H
#define TL_TRAINER_DATASET_INTERNAL_H

#include <jansson.h>

#include "dataset.h"

/* Appends a zeroed element to *array (n elements, capacity *cap, elements of `size` bytes);
 * returns it, or NULL when out of memory. */
void *ds_push(void **array, size_t *n, size_t *cap, size_t size);

/* A new item with id = product = id and label -1, or NULL when out of memory. */
dataset_item *ds_add_item(dataset *ds, size_t *cap, int64_t id);

/* strdup of s (NULL stays NULL); sets *failed when out of memory. */
char *ds_strdup(const char *s, int *failed);

/* dir + "/" + name, or name itself when it is absolute or dir is NULL (malloc'ed). */
char *ds_join(const char *dir, const char *name);

/* The directory part of path ("." when none), malloc'ed. */
char *ds_dirname(const char *path);

/* Calls fn for each non-blank line of a JSON Lines file with its parsed object and 1-based
 * line number. Messages from fn and from parsing get the prefix "path:line: ". */
typedef tl_status (*ds_line_fn)(const json_t *obj, void *ctx, tl_error *err);
tl_status ds_read_jsonl(const char *path, ds_line_fn fn, void *ctx, tl_error *err);

/* Loads a whole JSON file; syntax errors are "path:line:column: ...". */
tl_status ds_load_json(const char *path, json_t **root, tl_error *err);

/* Reads obj[key] as a string: required → error when missing; returns NULL when absent. */
tl_status ds_get_string(const json_t *obj, const char *key, int required, const char **out,
                        tl_error *err);

/* Reads obj[key] as an integer ≥ 0. */
tl_status ds_get_id(const json_t *obj, const char *key, int64_t *out, tl_error *err);

/* Reads a list of 1–2 caption strings into t. */
tl_status ds_set_captions(dataset_triplet *t, const char *const *captions, size_t n, tl_error *err);

/* Builds the id index and the labels; fails on a duplicate id. Every loader calls it last. */
tl_status ds_finish(dataset *ds, tl_error *err);

/* FashionGen's open HDF5 file (dataset_fashiongen.c): row's image, and closing it. */
tl_status ds_hdf5_read_image(dataset_hdf5 *h, size_t row, tl_image *out, tl_error *err);
void ds_hdf5_close(dataset_hdf5 *h);

#endif
