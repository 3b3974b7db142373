/* Zeroed per-step buffers for training forwards and backwards, freed together.
 * Not for: memory that outlives a step. */
#include "train_arena.h"

#include <stdlib.h>
#include <string.h>

void *train_arena_alloc(train_arena *a, size_t bytes) {
    if (a->count == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        void **b = realloc(a->blocks, cap * sizeof *b);
        if (!b) {
            a->failed = 1;
            return NULL;
        }
        a->blocks = b, a->cap = cap;
    }
    bytes = ((bytes ? bytes : 1) + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        a->failed = 1;
        return NULL;
    }
    memset(p, 0, bytes);
    a->blocks[a->count++] = p;
    return p;
}

float *train_arena_floats(train_arena *a, size_t n) {
    return train_arena_alloc(a, n * sizeof(float));
}

void train_arena_reset(train_arena *a) {
    for (size_t i = 0; i < a->count; i++) free(a->blocks[i]);
    a->count = 0;
    a->failed = 0;
}

void train_arena_free(train_arena *a) {
    train_arena_reset(a);
    free(a->blocks);
    memset(a, 0, sizeof *a);
}
