/* The trainer's pseudo-random numbers: xoshiro256** seeded through splitmix64, with numbered
 * streams so independent consumers (a split, a garment, a data loader) never share a sequence.
 * Same seed and stream give the same numbers on every platform. Not for cryptography. */
#ifndef TL_TRAINER_RNG_H
#define TL_TRAINER_RNG_H

#include <stdint.h>

typedef struct tl_rng {
    uint64_t s[4];
} tl_rng;

/* Seeds rng from (seed, stream); different streams are statistically independent. */
void rng_seed(tl_rng *rng, uint64_t seed, uint64_t stream);

uint64_t rng_next_u64(tl_rng *rng);

/* A uniform integer in [0, n), without modulo bias; n must be > 0. */
uint32_t rng_below(tl_rng *rng, uint32_t n);

/* Shuffles values[0..n) in place (Fisher-Yates). */
void rng_shuffle_ints(tl_rng *rng, int *values, int n);

#endif
