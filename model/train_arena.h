/* Activation memory of one training step: zeroed float buffers that live until the next reset,
 * so a forward can keep everything its backward reads, and gradient buffers start at zero.
 * Not for: parameters (param_set) or inference scratch (clip_scratch). */
#ifndef TL_TRAIN_ARENA_H
#define TL_TRAIN_ARENA_H

#include <stddef.h>

typedef struct train_arena {
    void **blocks;
    size_t count, cap;
    int failed; /* sticky: some allocation failed since the last reset */
} train_arena;

/* bytes zeroed bytes (64-byte aligned) owned by the arena, or NULL (and a->failed) when out
 * of memory. */
void *train_arena_alloc(train_arena *a, size_t bytes);

/* train_arena_alloc of n floats. */
float *train_arena_floats(train_arena *a, size_t n);

/* Frees every buffer handed out and clears a->failed. */
void train_arena_reset(train_arena *a);

/* Frees everything including the block table. */
void train_arena_free(train_arena *a);

#endif
