/* Fuzz target for session_deserialize (model/session_codec.c): any bytes, and the same bytes with
 * a valid CRC-32 in their last 4 (so mutations also reach the checks behind the checksum),
 * against a small cascaded NTM and a decayed-sum configuration. A decoded session must encode
 * back to the same bytes (the format has one encoding per session). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "session_codec.h"

/* The seeds in corpus/session/ were written for these configurations. */
static const ntm_config fuzz_configs[] = {
    {.kind = NTM_KIND_CASCADE, .blocks = 2, .slots = 3, .width = 4, .hidden = 5, .proj = 4},
    {.kind = NTM_KIND_DECAYED_SUM, .proj = 4, .decay = 0.5f},
};

static void check_reencodes(const uint8_t *data, size_t size, const ntm_state *s,
                            const session_meta *meta) {
    uint8_t *again = NULL;
    size_t len = 0;
    tl_error err = {0};
    if (session_serialize(s, meta, &again, &len, &err) != TL_OK) abort();
    if (len != size || memcmp(again, data, size) != 0) abort();
    free(again);
}

static void decode_each_config(const uint8_t *data, size_t size) {
    for (size_t i = 0; i < sizeof fuzz_configs / sizeof *fuzz_configs; i++) {
        ntm_state s;
        session_meta meta;
        tl_error err = {0};
        if (session_deserialize(data, size, &fuzz_configs[i], &s, &meta, &err) == TL_OK) {
            check_reencodes(data, size, &s, &meta);
        } else if (err.message[0] == '\0' || s.values != NULL || meta.shown_ids != NULL) {
            abort(); /* a failure must say why and leave nothing allocated */
        }
        session_meta_release(&meta);
        ntm_state_release(&s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    decode_each_config(data, size);
    if (size < 4) return 0;
    uint8_t *sealed = malloc(size);
    if (!sealed) return 0;
    memcpy(sealed, data, size);
    uint32_t crc = (uint32_t)crc32(0L, sealed, (uInt)(size - 4));
    for (int i = 0; i < 4; i++) sealed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    decode_each_config(sealed, size);
    free(sealed);
    return 0;
}
