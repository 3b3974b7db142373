/* The stable error codes of the HTTP API and their HTTP statuses: one table, read by every
 * route, by the JSON error writer and (by hand) mirrored in proto/openapi.yaml.
 * Not for: library status codes (model/error.h); api_error_from_status maps those. */
#ifndef TAILORD_ERRORS_H
#define TAILORD_ERRORS_H

#include "error.h"

typedef enum api_error {
    API_OK = 0,
    API_BAD_JSON,          /* body is not a JSON object */
    API_UNKNOWN_FIELD,     /* a field the endpoint does not define */
    API_INVALID_FIELD,     /* a field of the wrong type or out of bounds */
    API_MISSING_FIELD,     /* a required field is absent */
    API_INVALID_BASE64,    /* an image field is not valid base64 */
    API_INVALID_IMAGE,     /* bytes that do not decode as JPEG, PNG or WebP */
    API_IMAGE_TOO_LARGE,   /* too many pixels or bytes */
    API_BAD_REQUEST,       /* malformed request line, id or query */
    API_UNAUTHORIZED,      /* admin route without a valid API key */
    API_NOT_FOUND,         /* no such route */
    API_ITEM_NOT_FOUND,    /* no catalogue item with that id */
    API_SESSION_NOT_FOUND, /* no such session (or it expired) */
    API_METHOD_NOT_ALLOWED,
    API_BODY_TOO_LARGE, /* body beyond body_limit */
    API_URI_TOO_LONG,
    API_UNSUPPORTED_MEDIA, /* a body that is not application/json */
    API_RATE_LIMITED,      /* the bulk queue is full: retry later */
    API_OVERLOADED,        /* the interactive queue is full: retry later */
    API_NOT_READY,         /* model or index not loaded yet */
    API_UNAVAILABLE,       /* the loaded model lacks the capability */
    API_SHUTTING_DOWN,
    API_INTERNAL,
    API_ERROR_COUNT
} api_error;

/* Stable lower-case code ("unknown_field", ...) and HTTP status of e. */
const char *api_error_code(api_error e);
unsigned api_error_http_status(api_error e);

/* The API error for a library failure: invalid → invalid_field, format (undecodable image)
 * → invalid_image, limit → image_too_large, not found → item_not_found, unavailable and
 * unsupported → unavailable, others internal. */
api_error api_error_from_status(tl_status s);

#endif
