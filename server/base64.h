/* Standard base64 (RFC 4648 §4, with padding): strict decoding of client data and encoding of
 * session snapshots. Not for: URL-safe base64 or MIME line breaks (both refused). */
#ifndef TAILORD_BASE64_H
#define TAILORD_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Decodes text[len] (padding required, no whitespace) into *out (caller frees) of *out_len
 * bytes. Returns 0, or -1 for invalid text or no memory (*out is then NULL). */
int base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

/* Encodes bytes[len] as a NUL-terminated string (caller frees); NULL when out of memory. */
char *base64_encode(const uint8_t *bytes, size_t len);

#endif
