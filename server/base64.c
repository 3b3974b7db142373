/* base64.h: a lookup-free decoder that refuses anything off the standard alphabet, and the
 * matching encoder. */
#include "base64.h"

#include <stdlib.h>

static int base64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (len % 4) return -1;
    size_t pad = len && text[len - 1] == '=' ? (len > 1 && text[len - 2] == '=' ? 2 : 1) : 0;
    uint8_t *bytes = malloc(len / 4 * 3 + 1);
    if (!bytes) return -1;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        int v[4];
        for (int k = 0; k < 4; k++) {
            int padded = last && k >= 4 - (int)pad;
            v[k] = padded ? 0 : base64_value((unsigned char)text[i + (size_t)k]);
            if (v[k] < 0) {
                free(bytes);
                return -1;
            }
        }
        uint32_t triple =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        bytes[n++] = (uint8_t)(triple >> 16);
        if (!(last && pad == 2)) bytes[n++] = (uint8_t)(triple >> 8);
        if (!(last && pad >= 1)) bytes[n++] = (uint8_t)triple;
    }
    *out = bytes;
    *out_len = n;
    return 0;
}

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const uint8_t *bytes, size_t len) {
    char *text = malloc((len + 2) / 3 * 4 + 1);
    if (!text) return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t triple = (uint32_t)bytes[i] << 16;
        if (i + 1 < len) triple |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < len) triple |= bytes[i + 2];
        text[n++] = alphabet[triple >> 18 & 63];
        text[n++] = alphabet[triple >> 12 & 63];
        text[n++] = i + 1 < len ? alphabet[triple >> 6 & 63] : '=';
        text[n++] = i + 2 < len ? alphabet[triple & 63] : '=';
    }
    text[n] = 0;
    return text;
}
