/* A hash map from 64-bit product ids to small integers (open addressing, linear probing),
 * used by the vector index (id -> category slot) and the catalogue parser (id -> line).
 * Not thread-safe: callers hold their own lock. */
#ifndef TL_ID_MAP_H
#define TL_ID_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct id_map {
    int64_t *keys;
    int32_t *values;
    uint8_t *used;
    size_t capacity; /* a power of two, or 0 before the first put */
    size_t count;
} id_map;

/* An empty map needs no allocation: `id_map m = {0};`. id_map_free releases its memory. */
void id_map_free(id_map *m);

/* Inserts key or replaces its value. */
tl_status id_map_put(id_map *m, int64_t key, int32_t value, tl_error *err);

/* Returns 1 and sets *value (may be NULL) when key is present, 0 otherwise. */
int id_map_get(const id_map *m, int64_t key, int32_t *value);

/* Removes key; returns 1 when it was present. */
int id_map_remove(id_map *m, int64_t key);

#endif
