/* Activation memory of one training step: zeroed float buffers that live until the next reset,
 * so a forward can keep everything its backward reads, and gradient buffers start at zero.
 * A bump allocator over chunks that are kept across resets: every step allocates the same
 * buffers in the same order, so after the first step no page is mapped or faulted in again
 * (fresh buffers per step cost about half of a ViT-B/16 step in page faults and kernel page
 * clearing). Under AddressSanitizer each buffer is followed by a poisoned red zone.
 * Not for: parameters (param_set) or inference scratch (clip_scratch). */
#ifndef TL_TRAIN_ARENA_H
#define TL_TRAIN_ARENA_H

#include <stddef.h>

typedef struct train_arena_chunk {
    char *base;
    size_t size, used;
} train_arena_chunk;

typedef struct train_arena {
    train_arena_chunk *chunks;
    size_t count, cap, current; /* allocation continues in chunks[current] */
    int failed;                 /* sticky: some allocation failed since the last reset */
} train_arena;

/* bytes zeroed bytes (64-byte aligned) owned by the arena, or NULL (and a->failed) when out
 * of memory. */
void *train_arena_alloc(train_arena *a, size_t bytes);

/* train_arena_alloc of n floats. */
float *train_arena_floats(train_arena *a, size_t n);

/* Hands every buffer back (their memory is reused by the next allocations) and clears
 * a->failed. */
void train_arena_reset(train_arena *a);

/* Frees everything, chunks included. */
void train_arena_free(train_arena *a);

/* Bytes held in chunks (what the arena keeps between steps). */
size_t train_arena_capacity(const train_arena *a);

#endif
