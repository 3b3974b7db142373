/* tl_error helpers: formatting messages into caller-owned error records. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

tl_status tl_fail(tl_error *err, tl_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

tl_status tl_error_prefix(tl_error *err, const char *fmt, ...) {
    if (!err) return TL_ERR_INVALID;
    char prefix[256], old[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->message, sizeof old);
    /* Truncation is acceptable: a long message keeps its start. */
    size_t n = strlen(prefix);
    if (n > sizeof err->message - 3) n = sizeof err->message - 3;
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 3;
    size_t m = strnlen(old, room);
    memcpy(err->message + n + 2, old, m);
    err->message[n + 2 + m] = '\0';
    return err->code;
}

const char *tl_status_name(tl_status code) {
    switch (code) {
        case TL_OK: return "ok";
        case TL_ERR_INVALID: return "invalid";
        case TL_ERR_IO: return "io";
        case TL_ERR_NOMEM: return "nomem";
        case TL_ERR_FORMAT: return "format";
        case TL_ERR_LIMIT: return "limit";
        case TL_ERR_NOT_FOUND: return "not_found";
        case TL_ERR_UNSUPPORTED: return "unsupported";
        case TL_ERR_UNAVAILABLE: return "unavailable";
    }
    return "unknown";
}
