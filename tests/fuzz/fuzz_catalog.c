/* libFuzzer target for catalogue parsing (proto/catalog.md): the first byte picks JSON Lines
 * (even) or CSV (odd), the rest goes through catalog_parse_buffer, not NUL-terminated. Every
 * product handed out must carry an image path and a JSON attributes text, and the counts must
 * agree with the callbacks. Not for: reading files or storing products. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "catalog_parse.h"

typedef struct counts {
    int64_t products, issues;
} counts;

static tl_status on_product(const catalog_product *p, int line, void *ctx, tl_error *err) {
    (void)err;
    counts *c = ctx;
    if (p->id < 0 || !p->image_path || !*p->image_path || !p->attributes || line < 1) abort();
    json_t *attributes = json_loads(p->attributes, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(attributes)) abort();
    json_decref(attributes);
    c->products++;
    return TL_OK;
}

static void on_issue(int line, const char *message, void *ctx) {
    counts *c = ctx;
    if (line < 0 || !message || !*message) abort();
    c->issues++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    counts c = {0, 0};
    catalog_parse_opts opts = {.format = data[0] & 1 ? CATALOG_CSV : CATALOG_JSONL,
                               .strict = (data[0] >> 1) & 1,
                               .on_product = on_product,
                               .on_issue = on_issue,
                               .ctx = &c};
    /* a private copy, so reading past the end is caught even when the fuzzer's buffer is larger */
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    if (!text) return 0;
    memcpy(text, data + 1, len);
    catalog_parse_stats stats = {0, 0};
    tl_error err;
    catalog_parse_buffer(text, len, &opts, &stats, &err);
    if (stats.products != c.products || stats.issues != c.issues) abort();
    free(text);
    return 0;
}
