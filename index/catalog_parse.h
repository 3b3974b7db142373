/* Reading catalogue files (proto/catalog.md): JSON Lines (.jsonl, .ndjson) and CSV with a
 * header (.csv, RFC 4180 quoting). Each product is handed to a callback; every bad line is
 * reported with its line number and skipped, and nothing else from the file is lost.
 * Not for: storing products (catalog_store.h) or reading images. */
#ifndef TL_CATALOG_PARSE_H
#define TL_CATALOG_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "catalog_store.h"
#include "error.h"

typedef enum catalog_format { CATALOG_JSONL, CATALOG_CSV } catalog_format;

/* Receives each good product (valid only during the call) and the line it starts on. A
 * non-TL_OK return stops parsing and is returned by the parse call. */
typedef tl_status (*catalog_product_fn)(const catalog_product *p, int line, void *ctx,
                                        tl_error *err);
/* Receives each problem: a malformed line, a duplicate id, a missing image. */
typedef void (*catalog_issue_fn)(int line, const char *message, void *ctx);

typedef struct catalog_parse_opts {
    catalog_format format;
    const char *base_dir; /* relative image paths are resolved against it; NULL = as given */
    int strict;           /* 1: any issue makes the parse fail (after reporting them all) */
    int check_images;     /* 1: an image file that cannot be read is an issue */
    catalog_product_fn on_product;
    catalog_issue_fn on_issue; /* may be NULL */
    void *ctx;
} catalog_parse_opts;

typedef struct catalog_parse_stats {
    int64_t products, issues;
} catalog_parse_stats;

/* Parses len bytes of text. Returns TL_ERR_FORMAT for an unusable CSV header, or in strict mode
 * when there were issues; otherwise TL_OK even when lines were skipped (see stats). */
tl_status catalog_parse_buffer(const char *text, size_t len, const catalog_parse_opts *opts,
                               catalog_parse_stats *stats, tl_error *err);

/* Reads path and parses it; the format comes from the extension and base_dir from the file's
 * directory (opts->format and opts->base_dir are ignored). */
tl_status catalog_parse_file(const char *path, const catalog_parse_opts *opts,
                             catalog_parse_stats *stats, tl_error *err);

#endif
