/* SHA-256 (FIPS 180-4) for the checksums in index manifests. Not for: anything needing a
 * constant-time or hardware-accelerated implementation. */
#ifndef TL_SHA256_H
#define TL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct sha256_ctx {
    uint32_t state[8];
    uint64_t length; /* bytes hashed so far */
    uint8_t block[64];
    size_t used; /* bytes in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, uint8_t digest[32]);

/* Lower-case hex of a digest into hex[65] (NUL-terminated). */
void sha256_hex(const uint8_t digest[32], char hex[65]);

/* Hashes a whole file into hex[65]; feeds the bytes to ctx too when ctx is not NULL. */
tl_status sha256_file(const char *path, char hex[65], sha256_ctx *ctx, tl_error *err);

#endif
