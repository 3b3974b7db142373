/* Open-addressing hash map int64 -> int32 with backward-shift deletion (no tombstones).
 * Not for: ordered iteration or concurrent use. */
#include "id_map.h"

#include <stdlib.h>

static size_t slot_of(int64_t key, size_t capacity) {
    uint64_t h = (uint64_t)key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29)) & (capacity - 1);
}

void id_map_free(id_map *m) {
    free(m->keys);
    free(m->values);
    free(m->used);
    *m = (id_map){0};
}

static tl_status id_map_grow(id_map *m, tl_error *err) {
    size_t capacity = m->capacity ? m->capacity * 2 : 64;
    id_map bigger = {.keys = malloc(capacity * sizeof(int64_t)),
                     .values = malloc(capacity * sizeof(int32_t)),
                     .used = calloc(capacity, 1),
                     .capacity = capacity};
    if (!bigger.keys || !bigger.values || !bigger.used) {
        id_map_free(&bigger);
        return tl_fail(err, TL_ERR_NOMEM, "id map: cannot grow to %zu slots", capacity);
    }
    for (size_t i = 0; i < m->capacity; i++)
        if (m->used[i]) id_map_put(&bigger, m->keys[i], m->values[i], NULL);
    id_map_free(m);
    *m = bigger;
    return TL_OK;
}

tl_status id_map_put(id_map *m, int64_t key, int32_t value, tl_error *err) {
    if ((m->count + 1) * 4 > m->capacity * 3) {
        tl_status st = id_map_grow(m, err);
        if (st) return st;
    }
    size_t i = slot_of(key, m->capacity);
    while (m->used[i] && m->keys[i] != key) i = (i + 1) & (m->capacity - 1);
    if (!m->used[i]) m->count++;
    m->used[i] = 1;
    m->keys[i] = key;
    m->values[i] = value;
    return TL_OK;
}

static int id_map_find(const id_map *m, int64_t key, size_t *slot) {
    if (!m->capacity) return 0;
    for (size_t i = slot_of(key, m->capacity); m->used[i]; i = (i + 1) & (m->capacity - 1))
        if (m->keys[i] == key) {
            *slot = i;
            return 1;
        }
    return 0;
}

int id_map_get(const id_map *m, int64_t key, int32_t *value) {
    size_t i;
    if (!id_map_find(m, key, &i)) return 0;
    if (value) *value = m->values[i];
    return 1;
}

int id_map_remove(id_map *m, int64_t key) {
    size_t hole;
    if (!id_map_find(m, key, &hole)) return 0;
    size_t mask = m->capacity - 1;
    /* Shift later members of the probe run back into the hole when their home allows it. */
    for (size_t j = (hole + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->capacity);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->keys[hole] = m->keys[j];
            m->values[hole] = m->values[j];
            hole = j;
        }
    }
    m->used[hole] = 0;
    m->count--;
    return 1;
}
