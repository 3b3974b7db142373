/* Deterministic random test inputs: an xorshift64 stream of uniform floats, and arrays of them.
 * Each test program that includes this has its own stream, starting from the same state.
 * Not for: statistics or anything secret. */
#ifndef TL_TEST_RANDOM_H
#define TL_TEST_RANDOM_H

#include <stdint.h>
#include <stdlib.h>

static uint64_t rng_state = 88172645463325252ull;

static inline float rand_uniform(float lo, float hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 11) * (1.0 / 9007199254740992.0));
}

/* n uniform values in [lo, hi); caller frees. */
static inline float *rand_array(size_t n, float lo, float hi) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) x[i] = rand_uniform(lo, hi);
    return x;
}

#endif
