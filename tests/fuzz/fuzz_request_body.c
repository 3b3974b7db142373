/* libFuzzer target for tailord's request-body parsers (server/request_body.h): every parser
 * reads the same bytes, and whatever they accept must respect the documented bounds; whatever
 * they refuse must carry a stable error code. Also base64 and the path id parser. */
#include <stdlib.h>
#include <string.h>

#include "../../server/base64.h"
#include "../../server/request_body.h"

static void check_query(const search_request *r) {
    if (r->limit < 1 || r->limit > SEARCH_LIMIT_MAX) abort();
    if (r->offset < 0 || r->offset > SEARCH_OFFSET_MAX) abort();
    if (r->image.bytes && r->item_id >= 0) abort();
    if (r->text && (!*r->text || strlen(r->text) > REQUEST_TEXT_MAX_BYTES)) abort();
}

static void check_refusal(int rc, const request_error *e) {
    if (rc && (e->code <= API_OK || e->code >= API_ERROR_COUNT || !e->message[0])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    request_error e;
    search_request q;
    int rc = parse_search_request(data, size, &q, &e);
    if (!rc) check_query(&q);
    check_refusal(rc, &e);
    search_request_free(&q);

    rc = parse_turn_request(data, size, &q, &e);
    if (!rc) check_query(&q);
    check_refusal(rc, &e);
    search_request_free(&q);

    embed_request em;
    rc = parse_embed_request(data, size, 64, &em, &e);
    if (!rc && (em.n_texts + em.n_images < 1 || em.n_texts + em.n_images > 64)) abort();
    check_refusal(rc, &e);
    embed_request_free(&em);

    item_request it;
    rc = parse_item_request(data, size, &it, &e);
    if (!rc && (!it.title || !it.category || !it.image.bytes || !it.sku)) abort();
    check_refusal(rc, &e);
    item_request_free(&it);

    check_refusal(parse_empty_request(data, size, &e), &e);

    uint8_t *decoded;
    size_t decoded_len;
    if (base64_decode((const char *)data, size, &decoded, &decoded_len) == 0) {
        char *again = base64_encode(decoded, decoded_len);
        if (decoded_len > size / 4 * 3 || (again && strlen(again) != size)) abort();
        free(again);
        free(decoded);
    }
    char *text = malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = 0;
        int64_t id = parse_item_id(text);
        if (id < -1) abort();
        free(text);
    }
    return 0;
}
