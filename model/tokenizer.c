/* CLIP byte-level BPE tokenizer (openai simple_tokenizer minus ftfy): pre-tokenizer, BPE by
 * merge rank, encoding and decoding. Loading is tokenizer_load.c, text clean-up (HTML unescape,
 * whitespace, lower-case) tokenizer_clean.c. The tokenizer is immutable, so calls are
 * thread-safe. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unictype.h>
#include <unistr.h>

#include "tokenizer_internal.h"

/* Merge rank of the adjacent symbols (first, second), or -1 when they never merge. */
static int32_t merge_rank(const tl_tokenizer *tok, int32_t first, int32_t second) {
    return merge_slot_of(tok, merge_pair_key(first, second))->rank;
}

int32_t tok_vocab_size(const tl_tokenizer *tok) {
    return tok->vocab_size;
}

int32_t tok_sot_id(const tl_tokenizer *tok) {
    return tok->sot_id;
}

int32_t tok_eot_id(const tl_tokenizer *tok) {
    return tok->eot_id;
}

/* ---- pre-tokenizer: the split regex, by hand ---- */

/* CHAR_SKIPPED: matched by no alternative (whitespace), so skipped between pieces. */
typedef enum char_class { CHAR_SKIPPED, CHAR_LETTER, CHAR_NUMBER, CHAR_OTHER } char_class;

/* Classes of `\s` (regex's \s is Unicode White_Space), `\p{L}`, `\p{N}` and the rest. Under
 * the regex module's IGNORECASE, U+0345 (Mn, but it case-folds to the letter ι) matches neither
 * \p{L} nor the negated class, so it is skipped too. */
static char_class classify(ucs4_t c) {
    if (uc_is_property_white_space(c) || c == 0x345) return CHAR_SKIPPED;
    if (uc_is_general_category(c, UC_CATEGORY_L)) return CHAR_LETTER;
    if (uc_is_general_category(c, UC_CATEGORY_N)) return CHAR_NUMBER;
    return CHAR_OTHER;
}

/* Byte length of the match of lower-case ASCII `literal` at s, under the IGNORECASE of the split
 * regex (on lower-cased text only 's' has another match, U+017F 'ſ'); 0 when it does not match. */
static size_t match_literal(const uint8_t *s, size_t n, const char *literal) {
    size_t i = 0;
    for (; *literal; literal++) {
        if (i < n && s[i] == (uint8_t)*literal)
            i += 1;
        else if (*literal == 's' && i + 1 < n && s[i] == 0xC5 && s[i + 1] == 0xBF)
            i += 2;
        else
            return 0;
    }
    return i;
}

/* Byte length of the piece starting at s (valid UTF-8), 0 when s starts with a skipped character:
 * <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+ */
static size_t piece_length(const uint8_t *s, size_t n) {
    static const char *const literals[] = {SOT_TEXT, EOT_TEXT, "'s",  "'t", "'re",
                                           "'ve",    "'m",     "'ll", "'d"};
    for (size_t k = 0; k < sizeof literals / sizeof *literals && (*s == '<' || *s == '\''); k++) {
        size_t len = match_literal(s, n, literals[k]);
        if (len) return len;
    }
    ucs4_t c;
    size_t len = (size_t)u8_mbtouc_unsafe(&c, s, n);
    char_class cls = classify(c);
    if (cls == CHAR_SKIPPED) return 0;
    if (cls == CHAR_NUMBER) return len;
    while (len < n) {
        int k = u8_mbtouc_unsafe(&c, s + len, n - len);
        if (classify(c) != cls) break;
        len += (size_t)k;
    }
    return len;
}

/* ---- BPE ---- */

/* A growable id array; `failed` records an allocation failure. */
typedef struct id_buf {
    int32_t *data;
    size_t len, cap;
    bool failed;
} id_buf;

static void id_push(id_buf *b, int32_t id) {
    if (b->failed) return;
    if (b->len == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 32;
        int32_t *data = realloc(b->data, cap * sizeof *data);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    b->data[b->len++] = id;
}

/* Scratch space for BPE on one word of up to `cap` bytes: symbols as a linked list over the
 * word's byte positions (sym -1 once merged into its left neighbour) and a min-heap of
 * (rank << 32 | position) candidate merges. */
typedef struct bpe_work {
    int32_t *sym, *prev, *next, *round;
    uint64_t *heap;
    size_t heap_len;
} bpe_work;

static bool bpe_work_alloc(bpe_work *w, size_t cap) {
    w->sym = malloc(4 * cap * sizeof(int32_t));
    w->heap = malloc(3 * cap * sizeof(uint64_t));
    w->prev = w->sym + cap;
    w->next = w->prev + cap;
    w->round = w->next + cap;
    return w->sym && w->heap;
}

static void bpe_work_free(bpe_work *w) {
    free(w->sym);
    free(w->heap);
}

static void heap_push(bpe_work *w, uint64_t key) {
    size_t i = w->heap_len++;
    while (i > 0 && w->heap[(i - 1) / 2] > key) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = key;
}

static uint64_t heap_pop(bpe_work *w) {
    uint64_t top = w->heap[0], last = w->heap[--w->heap_len];
    size_t i = 0, n = w->heap_len;
    for (size_t child; (child = 2 * i + 1) < n; i = child) {
        if (child + 1 < n && w->heap[child + 1] < w->heap[child]) child++;
        if (w->heap[child] >= last) break;
        w->heap[i] = w->heap[child];
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

/* Queues the pair starting at live position i if it has a merge rank. */
static void queue_pair(const tl_tokenizer *tok, bpe_work *w, int32_t i) {
    if (i < 0 || w->next[i] < 0) return;
    int32_t rank = merge_rank(tok, w->sym[i], w->sym[w->next[i]]);
    if (rank >= 0) heap_push(w, (uint64_t)rank << 32 | (uint32_t)i);
}

/* Applies merge `rule` at position i if the pair there still is (first, second). */
static void merge_at(const tl_tokenizer *tok, bpe_work *w, const merge_rule *rule, int32_t i) {
    int32_t j = w->next[i];
    if (w->sym[i] != rule->first || j < 0 || w->sym[j] != rule->second) return;
    w->sym[i] = rule->result;
    w->sym[j] = -1;
    w->next[i] = w->next[j];
    if (w->next[i] >= 0) w->prev[w->next[i]] = i;
    queue_pair(tok, w, w->prev[i]);
    queue_pair(tok, w, i);
}

/* BPE of one word: each round takes the lowest-ranked adjacent pair and merges all its
 * non-overlapping occurrences left to right (exactly openai's bpe()), then emits the ids. */
static void bpe_word(const tl_tokenizer *tok, const uint8_t *word, size_t n, bpe_work *w,
                     id_buf *out) {
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = i + 1 < n ? tok->byte_id[word[i]] : tok->byte_end_id[word[i]];
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    w->heap_len = 0;
    for (size_t i = 0; i + 1 < n; i++) queue_pair(tok, w, (int32_t)i);
    while (w->heap_len > 0) {
        uint32_t rank = (uint32_t)(w->heap[0] >> 32);
        size_t count = 0;
        while (w->heap_len > 0 && (uint32_t)(w->heap[0] >> 32) == rank)
            w->round[count++] = (int32_t)(uint32_t)heap_pop(w);
        for (size_t k = 0; k < count; k++) merge_at(tok, w, &tok->rules[rank], w->round[k]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i]) id_push(out, w->sym[i]);
}

/* Appends the ids of piece s[0..n): a special token directly, anything else through BPE. */
static void encode_piece(const tl_tokenizer *tok, const uint8_t *s, size_t n, bpe_work *w,
                         id_buf *out) {
    if (n == strlen(SOT_TEXT) && memcmp(s, SOT_TEXT, n) == 0)
        id_push(out, tok->sot_id);
    else if (n == strlen(EOT_TEXT) && memcmp(s, EOT_TEXT, n) == 0)
        id_push(out, tok->eot_id);
    else
        bpe_word(tok, s, n, w, out);
}

/* [SOT] + ids of every piece of clean text + [EOT] into out. */
static tl_status encode_clean(const tl_tokenizer *tok, const uint8_t *s, size_t n, id_buf *out,
                              tl_error *err) {
    bpe_work w;
    if (!bpe_work_alloc(&w, n + 1)) {
        bpe_work_free(&w);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory tokenizing %zu bytes", n);
    }
    id_push(out, tok->sot_id);
    for (size_t i = 0; i < n;) {
        size_t len = piece_length(s + i, n - i);
        if (len == 0) {
            ucs4_t c;
            i += (size_t)u8_mbtouc_unsafe(&c, s + i, n - i);
            continue;
        }
        encode_piece(tok, s + i, len, &w, out);
        i += len;
    }
    id_push(out, tok->eot_id);
    bpe_work_free(&w);
    if (out->failed) return tl_fail(err, TL_ERR_NOMEM, "out of memory tokenizing %zu bytes", n);
    return TL_OK;
}

tl_status tok_encode_all(const tl_tokenizer *tok, const char *text, size_t len, int32_t **ids_out,
                         int *n_out, tl_error *err) {
    *ids_out = NULL;
    *n_out = 0;
    char *clean;
    size_t clean_len;
    tl_status st = tok_clean(text, len, &clean, &clean_len, err);
    if (st != TL_OK) return st;
    id_buf ids = {0};
    st = encode_clean(tok, (const uint8_t *)clean, clean_len, &ids, err);
    free(clean);
    if (st != TL_OK) {
        free(ids.data);
        return st;
    }
    *ids_out = ids.data;
    *n_out = (int)ids.len;
    return TL_OK;
}

tl_status tok_encode(const tl_tokenizer *tok, const char *text, size_t len, int context_len,
                     int32_t *ids, int *n_ids, tl_error *err) {
    *n_ids = 0;
    if (context_len < 2)
        return tl_fail(err, TL_ERR_INVALID, "context length %d is below 2", context_len);
    int32_t *all;
    int n;
    tl_status st = tok_encode_all(tok, text, len, &all, &n, err);
    if (st != TL_OK) return st;
    int keep = n < context_len ? n : context_len;
    memcpy(ids, all, (size_t)keep * sizeof *ids);
    ids[keep - 1] = tok->eot_id;
    *n_ids = keep;
    free(all);
    return TL_OK;
}

/* ---- decoding ---- */

/* Length of the UTF-8 sequence at s (n ≥ 1 bytes). *valid says whether it is one whole
 * character; if not, the length is the maximal invalid subpart, which Python's
 * decode(errors="replace") turns into one U+FFFD. */
static size_t utf8_sequence(const uint8_t *s, size_t n, bool *valid) {
    uint8_t c = s[0];
    size_t need = c < 0x80   ? 0
                  : c < 0xC2 ? SIZE_MAX
                  : c < 0xE0 ? 1
                  : c < 0xF0 ? 2
                  : c < 0xF5 ? 3
                             : SIZE_MAX;
    /* the second byte's range excludes overlongs (E0, F0), surrogates (ED), > U+10FFFF (F4) */
    uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
    size_t k = 1;
    if (need == SIZE_MAX) {
        *valid = false;
        return 1;
    }
    for (; k <= need && k < n && s[k] >= lo && s[k] <= hi; k++) {
        lo = 0x80;
        hi = 0xBF;
    }
    *valid = k == need + 1;
    return k;
}

/* The bytes of ids (SOT/EOT dropped) with "</w>" → " ", malloc'd into *out (caller frees). */
static tl_status gather_bytes(const tl_tokenizer *tok, const int32_t *ids, int n, uint8_t **out,
                              size_t *len, tl_error *err) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size)
            return tl_fail(err, TL_ERR_INVALID, "token id %d at position %d is outside [0, %d)",
                           ids[i], i, tok->vocab_size);
        total += tok->token_offset[ids[i] + 1] - tok->token_offset[ids[i]];
    }
    uint8_t *buf = malloc(total + 1);
    if (!buf) return tl_fail(err, TL_ERR_NOMEM, "out of memory decoding %d ids", n);
    size_t m = 0, eow = strlen(END_OF_WORD);
    for (int i = 0; i < n; i++) {
        if (ids[i] == tok->sot_id || ids[i] == tok->eot_id) continue;
        for (size_t k = tok->token_offset[ids[i]]; k < tok->token_offset[ids[i] + 1]; k++) {
            buf[m++] = tok->token_bytes[k];
            if (m >= eow && memcmp(buf + m - eow, END_OF_WORD, eow) == 0) {
                m -= eow;
                buf[m++] = ' ';
            }
        }
    }
    *out = buf;
    *len = m;
    return TL_OK;
}

tl_status tok_decode(const tl_tokenizer *tok, const int32_t *ids, int n, char *out, size_t cap,
                     tl_error *err) {
    uint8_t *bytes = NULL;
    size_t len = 0, pos = 0;
    tl_status st = gather_bytes(tok, ids, n, &bytes, &len, err);
    if (st != TL_OK) return st;
    static const char replacement[] = "\xEF\xBF\xBD";
    for (size_t i = 0; i < len;) {
        bool valid;
        size_t k = utf8_sequence(bytes + i, len - i, &valid);
        const char *piece = valid ? (const char *)bytes + i : replacement;
        size_t piece_len = valid ? k : 3;
        if (pos + piece_len >= cap) {
            st = tl_fail(err, TL_ERR_LIMIT, "decoded text does not fit in %zu bytes", cap);
            break;
        }
        memcpy(out + pos, piece, piece_len);
        pos += piece_len;
        i += k;
    }
    free(bytes);
    if (st == TL_OK && cap == 0)
        st = tl_fail(err, TL_ERR_LIMIT, "decoded text does not fit in 0 bytes");
    if (st == TL_OK) out[pos] = '\0';
    return st;
}
