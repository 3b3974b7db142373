/* train_arena: buffers are zeroed, aligned and distinct; a reset reuses the same memory for the
 * same sequence of allocations, so steady-state steps map nothing new. */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "train_arena.h"

static const size_t SIZES[] = {10, 4096, 100 << 20, 3, 70 << 20, 1 << 20};
#define N_SIZES (sizeof SIZES / sizeof SIZES[0])

static int all_zero(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

TEST(reset_reuses_memory_and_rezeroes) {
    train_arena a = {0};
    void *first[N_SIZES];
    for (size_t i = 0; i < N_SIZES; i++) {
        first[i] = train_arena_alloc(&a, SIZES[i]);
        REQUIRE(first[i]);
        CHECK(((uintptr_t)first[i] & 63) == 0);
        CHECK(all_zero(first[i], SIZES[i]));
        memset(first[i], 0xA5, SIZES[i]);
    }
    /* Distinct: no buffer overlaps the next one handed out. */
    for (size_t i = 0; i < N_SIZES; i++)
        for (size_t j = 0; j < N_SIZES; j++)
            if (i != j)
                CHECK((char *)first[i] + SIZES[i] <= (char *)first[j] ||
                      (char *)first[j] + SIZES[j] <= (char *)first[i]);
    size_t capacity = train_arena_capacity(&a);
    CHECK(capacity >= (100 << 20) + (70 << 20));
    for (int step = 0; step < 3; step++) {
        train_arena_reset(&a);
        for (size_t i = 0; i < N_SIZES; i++) {
            void *p = train_arena_alloc(&a, SIZES[i]);
            CHECKF(p == first[i], "step %d buffer %zu moved", step, i);
            CHECKF(p && all_zero(p, SIZES[i]), "step %d buffer %zu not zeroed", step, i);
            if (p) memset(p, 0x5A, SIZES[i]);
        }
        CHECK(train_arena_capacity(&a) == capacity && !a.failed);
    }
    CHECK(train_arena_floats(&a, 0) != NULL);
    train_arena_free(&a);
    CHECK(a.count == 0 && train_arena_capacity(&a) == 0);
}

int main(void) {
    RUN(reset_reuses_memory_and_rezeroes);
    return th_done();
}
