/* CLIP byte-level BPE tokenizer (openai simple_tokenizer semantics, ftfy skipped), loaded
 * from HF vocab.json + merges.txt, and its decoder. Thread-safe after load. */
#ifndef TL_TOKENIZER_H
#define TL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TOK_MAX_TEXT_BYTES                                                                         \
    (64u << 10) /* longer inputs are TL_ERR_LIMIT, never truncated silently */

typedef struct tl_tokenizer tl_tokenizer;

/* Loads vocab.json and merges.txt. *out is owned by the caller (tok_free). */
tl_status tok_load(tl_tokenizer **out, const char *vocab_json_path, const char *merges_path,
                   tl_error *err);
/* Loads DIR/vocab.json and DIR/merges.txt. */
tl_status tok_load_dir(tl_tokenizer **out, const char *dir, tl_error *err);
void tok_free(tl_tokenizer *tok);

int32_t tok_vocab_size(const tl_tokenizer *tok);
int32_t tok_sot_id(const tl_tokenizer *tok); /* <|startoftext|>, 49406 for CLIP */
int32_t tok_eot_id(const tl_tokenizer *tok); /* <|endoftext|>, 49407 for CLIP */

/* Tokenizes text (len bytes of UTF-8; invalid UTF-8 is TL_ERR_INVALID) into
 * [SOT] + BPE ids + [EOT], truncated to context_len keeping EOT last. Writes *n_ids ≤
 * context_len ids into ids (capacity context_len). */
tl_status tok_encode(const tl_tokenizer *tok, const char *text, size_t len, int context_len,
                     int32_t *ids, int *n_ids, tl_error *err);

/* Same without truncation: *ids_out is malloc'd (caller frees), *n_out ids. */
tl_status tok_encode_all(const tl_tokenizer *tok, const char *text, size_t len, int32_t **ids_out,
                         int *n_out, tl_error *err);

/* Decodes ids to text: SOT/EOT dropped, "</w>" becomes a space, byte symbols back to bytes.
 * Writes a NUL-terminated string of at most cap bytes; TL_ERR_LIMIT if it does not fit. */
tl_status tok_decode(const tl_tokenizer *tok, const int32_t *ids, int n, char *out, size_t cap,
                     tl_error *err);

/* Steps 1-3 of the tokenizer (HTML unescape twice, strip, whitespace collapse, lower-case),
 * exposed for tests. Returns a malloc'd NUL-terminated string (caller frees) or NULL with err. */
char *tok_clean_text(const char *text, size_t len, tl_error *err);
/* Status-returning form of tok_clean_text: *out is malloc'd (caller frees), NUL-terminated, and
 * *out_len is its length (the text may hold NUL characters). */
tl_status tok_clean(const char *text, size_t len, char **out, size_t *out_len, tl_error *err);

/* TL_ERR_LIMIT beyond TOK_MAX_TEXT_BYTES, TL_ERR_INVALID for invalid UTF-8 (naming the byte
 * offset), else TL_OK. Every entry point taking text runs this first. */
tl_status tok_check_text(const char *text, size_t len, tl_error *err);

#endif
