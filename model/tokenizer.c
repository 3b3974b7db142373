/* CLIP byte-level BPE tokenizer (openai simple_tokenizer minus ftfy): vocabulary loading,
 * pre-tokenizer, BPE by merge rank, encoding and decoding. Text clean-up (HTML unescape,
 * whitespace, lower-case) is tokenizer_clean.c. Immutable after tok_load, so thread-safe. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unictype.h>
#include <unistr.h>

#include "tokenizer.h"

#define SOT_TEXT         "<|startoftext|>"
#define EOT_TEXT         "<|endoftext|>"
#define END_OF_WORD      "</w>"
#define BYTE_ALPHABET_CP 0x144 /* byte symbols are code points below this */

/* One line of merges.txt: first + second → result, as vocabulary ids. Indexed by rank. */
typedef struct merge_rule {
    int32_t first, second, result;
} merge_rule;

/* Open-addressing slot of the pair → rank table; rank < 0 marks an empty slot. */
typedef struct merge_slot {
    uint64_t pair;
    int32_t rank;
} merge_slot;

struct tl_tokenizer {
    int32_t vocab_size, sot_id, eot_id;
    int32_t byte_id[256];     /* symbol of each byte */
    int32_t byte_end_id[256]; /* the same followed by "</w>" */
    uint8_t *token_bytes;     /* every token's bytes ("</w>" kept), concatenated in id order */
    size_t *token_offset;     /* [vocab_size + 1] into token_bytes */
    merge_rule *rules;        /* [num_rules] by rank */
    int32_t num_rules;
    merge_slot *slots; /* [slot_mask + 1] */
    uint64_t slot_mask;
};

/* ---- GPT-2 byte alphabet ---- */

static bool byte_is_printable(int b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

/* The code point standing for byte b: itself when printable, else U+0100 + its rank among the
 * 68 other bytes. */
static uint32_t byte_code_point(int b) {
    if (byte_is_printable(b)) return (uint32_t)b;
    uint32_t rank = 0;
    for (int k = 0; k < b; k++) rank += !byte_is_printable(k);
    return 0x100 + rank;
}

/* ---- pair → rank hash table ---- */

static uint64_t pair_key(int32_t first, int32_t second) {
    return (uint64_t)(uint32_t)first << 32 | (uint32_t)second;
}

static uint64_t pair_hash(uint64_t key) {
    key ^= key >> 29;
    key *= 0x9E3779B97F4A7C15ull;
    return key ^ (key >> 32);
}

/* The slot holding pair, or the empty slot where it would go. */
static merge_slot *merge_slot_of(const tl_tokenizer *tok, uint64_t pair) {
    uint64_t i = pair_hash(pair) & tok->slot_mask;
    while (tok->slots[i].rank >= 0 && tok->slots[i].pair != pair) i = (i + 1) & tok->slot_mask;
    return &tok->slots[i];
}

/* Merge rank of the adjacent symbols (first, second), or -1 when they never merge. */
static int32_t merge_rank(const tl_tokenizer *tok, int32_t first, int32_t second) {
    return merge_slot_of(tok, pair_key(first, second))->rank;
}

/* ---- loading ---- */

/* Reads a whole file into a malloc'd NUL-terminated buffer (caller frees). */
static tl_status read_whole_file(const char *path, char **out, size_t *len, tl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? 2 * cap : 1 << 20;
            char *grown = realloc(buf, cap);
            if (!grown) break;
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool failed = ferror(f) || n + 1 >= cap;
    fclose(f);
    if (failed) {
        free(buf);
        return tl_fail(err, TL_ERR_IO, "%s: read failed", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return TL_OK;
}

/* Looks up the id of token text[0..len) in the loaded vocab.json object; -1 if absent. */
static int32_t vocab_lookup(json_t *vocab, const char *text, size_t len) {
    json_t *id = json_object_getn(vocab, text, len);
    return id ? (int32_t)json_integer_value(id) : -1;
}

/* Appends the bytes token `text` stands for (each character through the byte alphabet). */
static tl_status append_token_bytes(tl_tokenizer *tok, const char *text, const int16_t *byte_of,
                                    size_t *pos, const char *path, tl_error *err) {
    const uint8_t *s = (const uint8_t *)text;
    size_t n = strlen(text);
    while (n > 0) {
        ucs4_t c;
        int k = u8_mbtouc(&c, s, n);
        if (c >= BYTE_ALPHABET_CP || byte_of[c] < 0)
            return tl_fail(err, TL_ERR_FORMAT,
                           "%s: token \"%s\" has a character outside the byte "
                           "alphabet",
                           path, text);
        tok->token_bytes[(*pos)++] = (uint8_t)byte_of[c];
        s += k;
        n -= (size_t)k;
    }
    return TL_OK;
}

/* Collects vocab.json's entries by id; checks that the ids are exactly 0..size-1. */
static tl_status vocab_by_id(json_t *vocab, const char **by_id, int32_t size, const char *path,
                             tl_error *err) {
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) {
        json_int_t id = json_is_integer(value) ? json_integer_value(value) : -1;
        if (id < 0 || id >= size || by_id[id])
            return tl_fail(err, TL_ERR_FORMAT, "%s: token \"%s\" has a bad or repeated id", path,
                           key);
        by_id[id] = key;
    }
    return TL_OK;
}

/* Fills token_bytes/token_offset from vocab.json's object. */
static tl_status load_token_bytes(tl_tokenizer *tok, json_t *vocab, const char *path,
                                  tl_error *err) {
    int16_t byte_of[BYTE_ALPHABET_CP];
    memset(byte_of, -1, sizeof byte_of);
    for (int b = 0; b < 256; b++) byte_of[byte_code_point(b)] = (int16_t)b;
    const char **by_id = calloc((size_t)tok->vocab_size, sizeof *by_id);
    size_t total = 0;
    const char *key;
    json_t *value;
    json_object_foreach(vocab, key, value) total += strlen(key);
    tok->token_bytes = malloc(total + 1);
    tok->token_offset = malloc(((size_t)tok->vocab_size + 1) * sizeof *tok->token_offset);
    if (!by_id || !tok->token_bytes || !tok->token_offset) {
        free(by_id);
        return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    }
    tl_status st = vocab_by_id(vocab, by_id, tok->vocab_size, path, err);
    size_t pos = 0;
    for (int32_t id = 0; st == TL_OK && id < tok->vocab_size; id++) {
        tok->token_offset[id] = pos;
        st = append_token_bytes(tok, by_id[id], byte_of, &pos, path, err);
    }
    tok->token_offset[tok->vocab_size] = pos;
    free(by_id);
    return st;
}

/* Finds the byte symbols (with and without "</w>") and the special tokens. */
static tl_status load_symbol_ids(tl_tokenizer *tok, json_t *vocab, const char *path,
                                 tl_error *err) {
    for (int b = 0; b < 256; b++) {
        char sym[8 + sizeof END_OF_WORD];
        int n = u8_uctomb((uint8_t *)sym, byte_code_point(b), 8);
        memcpy(sym + n, END_OF_WORD, sizeof END_OF_WORD);
        tok->byte_id[b] = vocab_lookup(vocab, sym, (size_t)n);
        tok->byte_end_id[b] = vocab_lookup(vocab, sym, strlen(sym));
        if (tok->byte_id[b] < 0 || tok->byte_end_id[b] < 0)
            return tl_fail(err, TL_ERR_FORMAT, "%s: byte symbol \"%s\" is missing", path, sym);
    }
    tok->sot_id = vocab_lookup(vocab, SOT_TEXT, strlen(SOT_TEXT));
    tok->eot_id = vocab_lookup(vocab, EOT_TEXT, strlen(EOT_TEXT));
    if (tok->sot_id < 0 || tok->eot_id < 0)
        return tl_fail(err, TL_ERR_FORMAT, "%s: %s or %s is missing", path, SOT_TEXT, EOT_TEXT);
    return TL_OK;
}

static tl_status load_vocab(tl_tokenizer *tok, json_t **vocab, const char *path, tl_error *err) {
    json_error_t jerr;
    *vocab = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!*vocab)
        return tl_fail(err, jerr.position == 0 && jerr.line <= 0 ? TL_ERR_IO : TL_ERR_FORMAT,
                       "%s: %s (line %d)", path, jerr.text, jerr.line);
    if (!json_is_object(*vocab) || json_object_size(*vocab) == 0 ||
        json_object_size(*vocab) > INT32_MAX / 2)
        return tl_fail(err, TL_ERR_FORMAT, "%s: not a non-empty JSON object of token ids", path);
    tok->vocab_size = (int32_t)json_object_size(*vocab);
    tl_status st = load_token_bytes(tok, *vocab, path, err);
    return st != TL_OK ? st : load_symbol_ids(tok, *vocab, path, err);
}

/* Parses merge line `line` ("first second") as rank `rank`. */
static tl_status add_merge(tl_tokenizer *tok, json_t *vocab, char *line, size_t line_no,
                           const char *path, tl_error *err) {
    char *space = strchr(line, ' ');
    if (!space || space == line || !space[1] || strchr(space + 1, ' '))
        return tl_fail(err, TL_ERR_FORMAT, "%s:%zu: expected two tokens separated by a space", path,
                       line_no);
    size_t first_len = (size_t)(space - line), second_len = strlen(space + 1);
    merge_rule rule = {vocab_lookup(vocab, line, first_len),
                       vocab_lookup(vocab, space + 1, second_len), -1};
    memmove(space, space + 1, second_len + 1); /* the pair's concatenation */
    rule.result = vocab_lookup(vocab, line, first_len + second_len);
    if (rule.first < 0 || rule.second < 0 || rule.result < 0)
        return tl_fail(err, TL_ERR_FORMAT, "%s:%zu: merge of tokens not in the vocabulary", path,
                       line_no);
    merge_slot *slot = merge_slot_of(tok, pair_key(rule.first, rule.second));
    slot->pair = pair_key(rule.first, rule.second);
    slot->rank = tok->num_rules; /* a repeated pair takes its last rank, as Python's dict */
    tok->rules[tok->num_rules++] = rule;
    return TL_OK;
}

static tl_status alloc_merge_tables(tl_tokenizer *tok, size_t max_rules, const char *path,
                                    tl_error *err) {
    size_t slots = 16;
    while (slots < 2 * max_rules) slots *= 2;
    tok->rules = malloc(max_rules * sizeof *tok->rules);
    tok->slots = malloc(slots * sizeof *tok->slots);
    if (!tok->rules || !tok->slots) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < slots; i++) tok->slots[i].rank = -1;
    tok->slot_mask = slots - 1;
    return TL_OK;
}

/* Reads merges.txt: an optional "#version" line, then one "first second" pair per line. */
static tl_status load_merges(tl_tokenizer *tok, json_t *vocab, const char *path, tl_error *err) {
    char *text = NULL;
    size_t len = 0;
    tl_status st = read_whole_file(path, &text, &len, err);
    if (st != TL_OK) return st;
    size_t max_rules = 1;
    for (size_t i = 0; i < len; i++) max_rules += text[i] == '\n';
    if (strlen(text) != len) st = tl_fail(err, TL_ERR_FORMAT, "%s: holds a NUL byte", path);
    if (st == TL_OK) st = alloc_merge_tables(tok, max_rules, path, err);
    char *line = text;
    for (size_t line_no = 1; st == TL_OK && line < text + len; line_no++) {
        char *end = strchr(line, '\n');
        char *next = end ? end + 1 : text + len;
        if (!end) end = text + len;
        if (end > line && end[-1] == '\r') end--;
        *end = '\0';
        bool skip = *line == '\0' || (line_no == 1 && strncmp(line, "#version", 8) == 0);
        if (!skip) st = add_merge(tok, vocab, line, line_no, path, err);
        line = next;
    }
    free(text);
    return st;
}

tl_status tok_load(tl_tokenizer **out, const char *vocab_json_path, const char *merges_path,
                   tl_error *err) {
    *out = NULL;
    tl_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) return tl_fail(err, TL_ERR_NOMEM, "out of memory loading the tokenizer");
    json_t *vocab = NULL;
    tl_status st = load_vocab(tok, &vocab, vocab_json_path, err);
    if (st == TL_OK) st = load_merges(tok, vocab, merges_path, err);
    json_decref(vocab);
    if (st != TL_OK) {
        tok_free(tok);
        return st;
    }
    *out = tok;
    return TL_OK;
}

tl_status tok_load_dir(tl_tokenizer **out, const char *dir, tl_error *err) {
    char vocab[4096], merges[4096];
    int a = snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    int b = snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (a < 0 || b < 0 || (size_t)a >= sizeof vocab || (size_t)b >= sizeof merges) {
        *out = NULL;
        return tl_fail(err, TL_ERR_INVALID, "tokenizer directory path too long");
    }
    return tok_load(out, vocab, merges, err);
}

void tok_free(tl_tokenizer *tok) {
    if (!tok) return;
    free(tok->token_bytes);
    free(tok->token_offset);
    free(tok->rules);
    free(tok->slots);
    free(tok);
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
