/* Parsers of the JSON request bodies of API v1: bytes in, a filled struct or a stable API
 * error with a message out. Unknown fields, wrong types, out-of-bounds numbers and invalid
 * base64 are all refused here, before any work is queued. Pure functions (fuzzed by
 * tests/fuzz/fuzz_request_body.c). Not for: HTTP framing (http.h). */
#ifndef TAILORD_REQUEST_BODY_H
#define TAILORD_REQUEST_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define REQUEST_TEXT_MAX_BYTES 4096
#define SEARCH_LIMIT_MAX       100
#define SEARCH_OFFSET_MAX      1000
#define SEARCH_LIMIT_DEFAULT   10

typedef struct request_error {
    api_error code;
    char message[256];
} request_error;

typedef struct decoded_image {
    uint8_t *bytes; /* owned */
    size_t len;
} decoded_image;

/* POST /v1/search and the query part of POST /v1/sessions/{id}/turns. */
typedef struct search_request {
    char *text;                   /* owned or NULL */
    decoded_image image;          /* bytes NULL when absent */
    int64_t item_id;              /* -1 when absent (reference_item_id in turns) */
    char *category, *subcategory; /* filter; owned or NULL */
    int limit, offset;
} search_request;

/* POST /v1/embed. */
typedef struct embed_request {
    char **texts;
    int n_texts;
    decoded_image *images;
    int n_images;
} embed_request;

/* PUT /v1/items/{id}. */
typedef struct item_request {
    char *sku, *title, *category, *subcategory; /* owned; "" when absent */
    decoded_image image;
} item_request;

#define CLASSIFY_MAX_LABELS 1000
#define CAPTION_MAX_BEAM    8

/* POST /v1/classify: labels NULL = the checkpoint's own scr labels. */
typedef struct classify_request {
    decoded_image image;
    char *text;    /* owned or NULL */
    char **labels; /* n_labels owned strings, or NULL */
    int n_labels;
} classify_request;

/* POST /v1/caption. */
typedef struct caption_request {
    decoded_image image;
    int beam;       /* 1..CAPTION_MAX_BEAM */
    int max_tokens; /* 0 = the model's context length, else 2..77 */
} caption_request;

/* Each parser returns 0 and fills out, or -1 and fills e (out is then empty). out must be
 * released with the matching _free, whatever the result. */
int parse_search_request(const uint8_t *body, size_t len, search_request *out, request_error *e);
int parse_turn_request(const uint8_t *body, size_t len, search_request *out, request_error *e);
int parse_embed_request(const uint8_t *body, size_t len, int max_items, embed_request *out,
                        request_error *e);
int parse_item_request(const uint8_t *body, size_t len, item_request *out, request_error *e);
int parse_classify_request(const uint8_t *body, size_t len, classify_request *out,
                           request_error *e);
int parse_caption_request(const uint8_t *body, size_t len, caption_request *out, request_error *e);
/* POST /v1/sessions: an empty body or an empty object. */
int parse_empty_request(const uint8_t *body, size_t len, request_error *e);

void search_request_free(search_request *r);
void embed_request_free(embed_request *r);
void item_request_free(item_request *r);
void classify_request_free(classify_request *r);
void caption_request_free(caption_request *r);

/* Parses a non-negative decimal id of at most 18 digits (path segments); -1 when invalid. */
int64_t parse_item_id(const char *text);

#endif
