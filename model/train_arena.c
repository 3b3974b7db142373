/* Zeroed per-step buffers for training forwards and backwards: a bump allocator over chunks
 * kept across steps. Not for: memory that outlives a step. */
#include "train_arena.h"

#include <stdlib.h>
#include <string.h>

#if !defined(__SANITIZE_ADDRESS__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define RED_ZONE          64
#define POISON(p, n)      ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n)    ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define RED_ZONE          0
#define POISON(p, n)      ((void)(p), (void)(n))
#define UNPOISON(p, n)    ((void)(p), (void)(n))
#endif

/* Chunks are at least this big; a bigger request gets a chunk of its own size. */
#define MIN_CHUNK ((size_t)64 << 20)

static void *take(train_arena_chunk *c, size_t bytes) {
    char *p = c->base + c->used;
    c->used += bytes + RED_ZONE;
    UNPOISON(p, bytes);
    memset(p, 0, bytes);
    return p;
}

static int add_chunk(train_arena *a, size_t size) {
    if (a->count == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        train_arena_chunk *grown = realloc(a->chunks, cap * sizeof *grown);
        if (!grown) return 0;
        a->chunks = grown, a->cap = cap;
    }
    char *base = aligned_alloc(64, size);
    if (!base) return 0;
    POISON(base, size);
    a->chunks[a->count++] = (train_arena_chunk){base, size, 0};
    return 1;
}

void *train_arena_alloc(train_arena *a, size_t bytes) {
    bytes = ((bytes ? bytes : 1) + 63) & ~(size_t)63;
    size_t need = bytes + RED_ZONE;
    for (; a->current < a->count; a->current++) {
        train_arena_chunk *c = &a->chunks[a->current];
        if (c->size - c->used >= need) return take(c, bytes);
    }
    if (!add_chunk(a, need > MIN_CHUNK ? need : MIN_CHUNK)) {
        a->failed = 1;
        return NULL;
    }
    a->current = a->count - 1;
    return take(&a->chunks[a->current], bytes);
}

float *train_arena_floats(train_arena *a, size_t n) {
    return train_arena_alloc(a, n * sizeof(float));
}

void train_arena_reset(train_arena *a) {
    for (size_t i = 0; i < a->count; i++) {
        POISON(a->chunks[i].base, a->chunks[i].size);
        a->chunks[i].used = 0;
    }
    a->current = 0;
    a->failed = 0;
}

void train_arena_free(train_arena *a) {
    for (size_t i = 0; i < a->count; i++) {
        UNPOISON(a->chunks[i].base, a->chunks[i].size);
        free(a->chunks[i].base);
    }
    free(a->chunks);
    memset(a, 0, sizeof *a);
}

size_t train_arena_capacity(const train_arena *a) {
    size_t n = 0;
    for (size_t i = 0; i < a->count; i++) n += a->chunks[i].size;
    return n;
}
