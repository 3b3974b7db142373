/* The session byte format of proto/session.md: an NTM (or decayed-sum) state plus the ids already
 * shown and the expiry, little-endian, versioned, CRC-32 checked. Not for: storing sessions
 * (the server's session store) or stepping them (ntm.h). */
#ifndef TL_SESSION_CODEC_H
#define TL_SESSION_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ntm.h"

#define SESSION_MAGIC          "TLSS"
#define SESSION_FORMAT_VERSION 1
#define SESSION_HEADER_BYTES   56
#define SESSION_MAX_SHOWN_IDS  (1u << 20)

/* Session data beside the memory state. */
typedef struct session_meta {
    uint64_t *shown_ids; /* [n_shown] item ids already shown; owned when filled by
                            session_deserialize */
    size_t n_shown;
    bool has_expiry;
    int64_t expires_at; /* unix seconds, when has_expiry */
} session_meta;

/* Encodes s (and meta, which may be NULL) into *out, malloc'd and owned by the caller (free()),
 * of *len bytes. Refuses non-finite state values and more than SESSION_MAX_SHOWN_IDS ids. */
tl_status session_serialize(const ntm_state *s, const session_meta *meta, uint8_t **out,
                            size_t *len, tl_error *err);

/* Decodes bytes[0, len) into *out, which it allocates (release with ntm_state_release) for the
 * loaded model's configuration `expected`; fills *meta (may be NULL; release with
 * session_meta_release). Rejects, with a message naming the problem: wrong magic or version
 * (TL_ERR_FORMAT, TL_ERR_UNSUPPORTED), truncated or extra bytes, checksum mismatch, non-finite
 * floats (TL_ERR_FORMAT), absurd sizes (TL_ERR_LIMIT), and kind, dims or decay other than the
 * model's (TL_ERR_INVALID). On failure *out and *meta are left empty. */
tl_status session_deserialize(const uint8_t *bytes, size_t len, const ntm_config *expected,
                              ntm_state *out, session_meta *meta, tl_error *err);

void session_meta_release(session_meta *meta);

#endif
