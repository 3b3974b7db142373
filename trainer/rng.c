/* xoshiro256** (Blackman and Vigna) seeded with splitmix64; see rng.h. Integer-only, so the
 * sequences do not depend on the compiler or the CPU. */
#include "rng.h"

static uint64_t splitmix64_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(tl_rng *rng, uint64_t seed, uint64_t stream) {
    uint64_t state = seed;
    uint64_t mixed = splitmix64_next(&state) ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) rng->s[i] = splitmix64_next(&mixed);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_next_u64(tl_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t rng_below(tl_rng *rng, uint32_t n) {
    /* Lemire's multiply-and-reject method. */
    uint64_t m = (uint64_t)(uint32_t)(rng_next_u64(rng) >> 32) * n;
    if ((uint32_t)m < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while ((uint32_t)m < threshold) m = (uint64_t)(uint32_t)(rng_next_u64(rng) >> 32) * n;
    }
    return (uint32_t)(m >> 32);
}

void rng_shuffle_ints(tl_rng *rng, int *values, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(rng, (uint32_t)i + 1);
        int v = values[i];
        values[i] = values[j];
        values[j] = v;
    }
}
