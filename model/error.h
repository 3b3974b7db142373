/* Status codes and error messages shared by every Tailor library module.
 * Library code never exits or aborts on bad input: it fills a tl_error and returns its code. */
#ifndef TL_ERROR_H
#define TL_ERROR_H

#include <stddef.h>

typedef enum tl_status {
    TL_OK = 0,
    TL_ERR_INVALID,     /* bad argument or bad input data */
    TL_ERR_IO,          /* open/read/write/mmap failed */
    TL_ERR_NOMEM,       /* allocation failed */
    TL_ERR_FORMAT,      /* malformed file or encoded data */
    TL_ERR_LIMIT,       /* a size limit was exceeded */
    TL_ERR_NOT_FOUND,   /* a named item (tensor, file, key) is missing */
    TL_ERR_UNSUPPORTED, /* valid input this build cannot handle */
    TL_ERR_UNAVAILABLE, /* the checkpoint lacks the capability asked for */
} tl_status;

typedef struct tl_error {
    tl_status code;
    char message[512];
} tl_error;

/* Records code and a printf-style message in err (may be NULL) and returns code, so callers
 * can write `return tl_fail(err, TL_ERR_FORMAT, "...", ...);`. */
tl_status tl_fail(tl_error *err, tl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends "context: " to err's message, keeping its code; returns the code. */
tl_status tl_error_prefix(tl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A stable lower-case name for a status ("format", "limit", ...). */
const char *tl_status_name(tl_status code);

#endif
