/* libFuzzer target for the CLIP tokenizer: tokenizes arbitrary bytes (clean-up, pre-tokenizer,
 * BPE) with the real vocabulary, checks the framing and the truncated form, decodes the ids back,
 * and decodes the raw bytes read as ids. The vocabulary is loaded once from
 * $TL_TESTDATA/clip-vocab, by default ../shared/testdata/clip-vocab (run from the source tree). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

#define CONTEXT_LEN 77

static const tl_tokenizer *load_once(void) {
    static tl_tokenizer *tok;
    if (tok) return tok;
    const char *data = getenv("TL_TESTDATA");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/clip-vocab", data ? data : "../shared/testdata");
    tl_error err;
    if (tok_load_dir(&tok, dir, &err) != TL_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.message);
        abort();
    }
    return tok;
}

/* Every id in range, SOT first, EOT last; the truncated form is the same prefix ending in EOT. */
static void check_ids(const tl_tokenizer *tok, const int32_t *ids, int n, const uint8_t *data,
                      size_t size) {
    if (n < 2 || ids[0] != tok_sot_id(tok) || ids[n - 1] != tok_eot_id(tok)) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_vocab_size(tok)) abort();
    int32_t ctx[CONTEXT_LEN];
    int m = 0;
    tl_error err;
    if (tok_encode(tok, (const char *)data, size, CONTEXT_LEN, ctx, &m, &err) != TL_OK) abort();
    int keep = n < CONTEXT_LEN ? n : CONTEXT_LEN;
    if (m != keep || ctx[m - 1] != tok_eot_id(tok) || memcmp(ctx, ids, (size_t)(m - 1) * 4))
        abort();
}

/* Decoding the ids of valid text gives valid UTF-8 at most 2 bytes per clean byte (+ spaces). */
static void check_decode(const tl_tokenizer *tok, const int32_t *ids, int n, const uint8_t *data,
                         size_t size) {
    char *clean;
    size_t clean_len;
    tl_error err;
    if (tok_clean((const char *)data, size, &clean, &clean_len, &err) != TL_OK) abort();
    free(clean);
    size_t cap = 2 * clean_len + 2;
    char *out = malloc(cap);
    if (!out) return;
    if (tok_decode(tok, ids, n, out, cap, &err) != TL_OK) abort();
    if (tok_check_text(out, strlen(out), &err) != TL_OK) abort();
    free(out);
}

/* Raw bytes read as ids: out-of-range ids, lone bytes and tiny buffers must fail cleanly. */
static void decode_raw_ids(const tl_tokenizer *tok, const uint8_t *data, size_t size) {
    int n = (int)(size / 4 < 256 ? size / 4 : 256);
    int32_t ids[256];
    for (int i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * (size_t)i, 4);
        ids[i] = (int32_t)(v % (uint32_t)(tok_vocab_size(tok) + 8)) - 4;
    }
    char out[512];
    tl_error err;
    tl_status st = tok_decode(tok, ids, n, out, size % sizeof out, &err);
    if (st != TL_OK && st != TL_ERR_INVALID && st != TL_ERR_LIMIT) abort();
    if (st == TL_OK && strlen(out) >= size % sizeof out) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const tl_tokenizer *tok = load_once();
    int32_t *ids = NULL;
    int n = 0;
    tl_error err;
    if (tok_encode_all(tok, (const char *)data, size, &ids, &n, &err) == TL_OK) {
        check_ids(tok, ids, n, data, size);
        check_decode(tok, ids, n, data, size);
    } else if (err.code != TL_ERR_INVALID && err.code != TL_ERR_LIMIT) {
        abort();
    }
    free(ids);
    decode_raw_ids(tok, data, size);
    return 0;
}
