/* Loads the CLIP tokenizer from HF vocab.json ({"token": id, ...}, parsed here by hand because a
 * general JSON library took >100 ms on the 1 MB file) and merges.txt. Builds the byte-symbol
 * ids, the id → bytes table for decoding and the pair → rank table. Not encoding (tokenizer.c). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "tokenizer_internal.h"

#define BYTE_ALPHABET_CP 0x144 /* byte symbols are code points below this */

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

/* Reads a whole file into a malloc'd NUL-terminated buffer (caller frees). */
static tl_status read_whole_file(const char *path, char **out, size_t *len, tl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            size_t bigger = cap ? 2 * cap : 1 << 20;
            char *grown = realloc(buf, bigger);
            if (!grown) break;
            buf = grown;
            cap = bigger;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    bool read_error = ferror(f), out_of_memory = n + 1 >= cap;
    fclose(f);
    if (read_error || out_of_memory) {
        free(buf);
        return read_error ? tl_fail(err, TL_ERR_IO, "%s: read failed", path)
                          : tl_fail(err, TL_ERR_NOMEM, "%s: out of memory reading it", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return TL_OK;
}

/* ---- vocab.json: token text → id, needed only while loading ---- */

typedef struct vocab_entry {
    size_t offset; /* into the arena */
    size_t len;
    int32_t id;
} vocab_entry;

typedef struct vocab_index {
    char *arena; /* decoded token texts, back to back */
    size_t arena_len;
    vocab_entry *entries;
    size_t count, cap;
    int32_t *slots; /* entry index + 1, 0 = empty; [mask + 1] */
    size_t mask;
} vocab_index;

static uint64_t text_hash(const char *s, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001B3ull;
    return h ^ (h >> 31);
}

/* The slot for text s[0..n): the one holding it, or the empty one where it would go. */
static int32_t *vocab_slot(const vocab_index *v, const char *s, size_t n) {
    size_t i = text_hash(s, n) & v->mask;
    for (;; i = (i + 1) & v->mask) {
        int32_t e = v->slots[i];
        if (e == 0) return &v->slots[i];
        const vocab_entry *en = &v->entries[e - 1];
        if (en->len == n && memcmp(v->arena + en->offset, s, n) == 0) return &v->slots[i];
    }
}

/* Id of token text s[0..n), or -1. */
static int32_t vocab_find(const vocab_index *v, const char *s, size_t n) {
    int32_t e = *vocab_slot(v, s, n);
    return e ? v->entries[e - 1].id : -1;
}

static void vocab_index_free(vocab_index *v) {
    free(v->arena);
    free(v->entries);
    free(v->slots);
}

/* A cursor over vocab.json's text, for error messages that name the file and byte. */
typedef struct json_cursor {
    const char *start, *p, *end, *path;
    tl_error *err;
} json_cursor;

static tl_status json_error(json_cursor *c, const char *what) {
    return tl_fail(c->err, TL_ERR_FORMAT, "%s: byte %zu: %s", c->path, (size_t)(c->p - c->start),
                   what);
}

static void json_skip_space(json_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int json_hex4(const char *s) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = s[i];
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Parses \uXXXX (with a following low surrogate when XXXX is a high one) at c->p (after the
 * backslash and 'u'); returns the code point or -1. */
static int json_unicode_escape(json_cursor *c) {
    if (c->end - c->p < 4) return -1;
    int cp = json_hex4(c->p);
    c->p += cp < 0 ? 0 : 4;
    if (cp < 0xD800 || cp > 0xDFFF) return cp;
    if (cp > 0xDBFF || c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u') return -1;
    int low = json_hex4(c->p + 2);
    if (low < 0xDC00 || low > 0xDFFF) return -1;
    c->p += 6;
    return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
}

/* Decodes one escape (c->p just after the backslash) into out; returns bytes written or -1. */
static int json_escape(json_cursor *c, char *out) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    char e = *c->p++;
    const char *k = e ? strchr(from, e) : NULL;
    if (k) {
        *out = to[k - from];
        return 1;
    }
    if (e != 'u') return -1;
    int cp = json_unicode_escape(c);
    return cp < 0 ? -1 : u8_uctomb((uint8_t *)out, (ucs4_t)cp, 4);
}

/* Parses a JSON string at c->p into the arena; sets *offset and *len. */
static tl_status json_string(json_cursor *c, vocab_index *v, size_t *offset, size_t *len) {
    if (c->p >= c->end || *c->p != '"') return json_error(c, "expected a string");
    c->p++;
    char *out = v->arena + v->arena_len;
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        if ((uint8_t)*c->p < 0x20) return json_error(c, "control character in a string");
        if (*c->p != '\\') {
            out[n++] = *c->p++;
            continue;
        }
        c->p++;
        int k = c->p < c->end ? json_escape(c, out + n) : -1;
        if (k < 0) return json_error(c, "bad escape in a string");
        n += (size_t)k;
    }
    if (c->p >= c->end) return json_error(c, "unterminated string");
    c->p++;
    if (u8_check((const uint8_t *)out, n)) return json_error(c, "string is not valid UTF-8");
    *offset = v->arena_len;
    *len = n;
    v->arena_len += n;
    return TL_OK;
}

static tl_status json_token_id(json_cursor *c, int32_t *id) {
    long long value = 0;
    const char *digits = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && value <= INT32_MAX)
        value = value * 10 + (*c->p++ - '0');
    if (c->p == digits || value > INT32_MAX) return json_error(c, "expected a token id");
    *id = (int32_t)value;
    return TL_OK;
}

static tl_status vocab_add(json_cursor *c, vocab_index *v, size_t offset, size_t len, int32_t id) {
    if (v->count == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 1024;
        vocab_entry *grown = realloc(v->entries, cap * sizeof *grown);
        if (!grown) return tl_fail(c->err, TL_ERR_NOMEM, "%s: out of memory", c->path);
        v->entries = grown;
        v->cap = cap;
    }
    v->entries[v->count++] = (vocab_entry){offset, len, id};
    return TL_OK;
}

/* Parses {"token": id, ...} into v's arena and entries (not yet indexed). */
static tl_status json_parse_vocab(json_cursor *c, vocab_index *v) {
    json_skip_space(c);
    if (c->p >= c->end || *c->p++ != '{') return json_error(c, "expected '{'");
    for (;;) {
        size_t offset = 0, len = 0;
        int32_t id = 0;
        json_skip_space(c);
        tl_status st = json_string(c, v, &offset, &len);
        json_skip_space(c);
        if (st == TL_OK && (c->p >= c->end || *c->p++ != ':')) st = json_error(c, "expected ':'");
        json_skip_space(c);
        if (st == TL_OK) st = json_token_id(c, &id);
        if (st == TL_OK) st = vocab_add(c, v, offset, len, id);
        if (st != TL_OK) return st;
        json_skip_space(c);
        char sep = c->p < c->end ? *c->p++ : '\0';
        if (sep == '}') break;
        if (sep != ',') return json_error(c, "expected ',' or '}'");
    }
    json_skip_space(c);
    return c->p == c->end ? TL_OK : json_error(c, "text after the object");
}

/* Indexes the entries by text; the ids must be exactly 0..count-1, each once. */
static tl_status vocab_build_index(vocab_index *v, const char *path, tl_error *err) {
    size_t slots = 16;
    while (slots < 2 * v->count) slots *= 2;
    v->slots = calloc(slots, sizeof *v->slots);
    if (!v->slots) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    v->mask = slots - 1;
    bool *id_seen = calloc(v->count + 1, sizeof *id_seen);
    if (!id_seen) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    tl_status st = TL_OK;
    for (size_t i = 0; i < v->count && st == TL_OK; i++) {
        const vocab_entry *e = &v->entries[i];
        int32_t *slot = vocab_slot(v, v->arena + e->offset, e->len);
        if (*slot)
            st = tl_fail(err, TL_ERR_FORMAT, "%s: token \"%.*s\" appears twice", path, (int)e->len,
                         v->arena + e->offset);
        else if (e->id < 0 || (size_t)e->id >= v->count || id_seen[e->id])
            st = tl_fail(err, TL_ERR_FORMAT, "%s: token id %d repeated or outside [0, %zu)", path,
                         e->id, v->count);
        else
            id_seen[e->id] = true;
        *slot = (int32_t)i + 1;
    }
    free(id_seen);
    return st;
}

static tl_status vocab_read(vocab_index *v, const char *path, tl_error *err) {
    char *text = NULL;
    size_t len = 0;
    tl_status st = read_whole_file(path, &text, &len, err);
    if (st != TL_OK) return st;
    v->arena = malloc(len + 1);
    json_cursor c = {text, text, text + len, path, err};
    st = v->arena ? json_parse_vocab(&c, v) : tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    free(text);
    if (st == TL_OK && v->count > INT32_MAX / 2)
        st = tl_fail(err, TL_ERR_LIMIT, "%s: too many tokens", path);
    return st == TL_OK ? vocab_build_index(v, path, err) : st;
}

/* ---- the tokenizer's tables ---- */

/* Fills token_bytes/token_offset: each token's characters through the byte alphabet. */
static tl_status load_token_bytes(tl_tokenizer *tok, const vocab_index *v, const char *path,
                                  tl_error *err) {
    int16_t byte_of[BYTE_ALPHABET_CP];
    memset(byte_of, -1, sizeof byte_of);
    for (int b = 0; b < 256; b++) byte_of[byte_code_point(b)] = (int16_t)b;
    const vocab_entry **by_id = calloc(v->count, sizeof *by_id);
    tok->token_bytes = malloc(v->arena_len + 1);
    tok->token_offset = malloc((v->count + 1) * sizeof *tok->token_offset);
    if (!by_id || !tok->token_bytes || !tok->token_offset) {
        free(by_id);
        return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < v->count; i++) by_id[v->entries[i].id] = &v->entries[i];
    size_t pos = 0;
    tl_status st = TL_OK;
    for (size_t id = 0; id < v->count && st == TL_OK; id++) {
        tok->token_offset[id] = pos;
        const uint8_t *s = (const uint8_t *)v->arena + by_id[id]->offset;
        for (size_t k = 0, n = by_id[id]->len; k < n && st == TL_OK;) {
            ucs4_t ch;
            k += (size_t)u8_mbtouc_unsafe(&ch, s + k, n - k);
            if (ch < BYTE_ALPHABET_CP && byte_of[ch] >= 0)
                tok->token_bytes[pos++] = (uint8_t)byte_of[ch];
            else
                st = tl_fail(err, TL_ERR_FORMAT,
                             "%s: token %zu has a character outside the "
                             "byte alphabet",
                             path, id);
        }
    }
    tok->token_offset[v->count] = pos;
    free(by_id);
    return st;
}

/* Finds the byte symbols (with and without "</w>") and the special tokens. */
static tl_status load_symbol_ids(tl_tokenizer *tok, const vocab_index *v, const char *path,
                                 tl_error *err) {
    for (int b = 0; b < 256; b++) {
        char sym[8 + sizeof END_OF_WORD];
        int n = u8_uctomb((uint8_t *)sym, byte_code_point(b), 8);
        memcpy(sym + n, END_OF_WORD, sizeof END_OF_WORD);
        tok->byte_id[b] = vocab_find(v, sym, (size_t)n);
        tok->byte_end_id[b] = vocab_find(v, sym, strlen(sym));
        if (tok->byte_id[b] < 0 || tok->byte_end_id[b] < 0)
            return tl_fail(err, TL_ERR_FORMAT, "%s: byte symbol \"%.*s\" or \"%s\" is missing",
                           path, n, sym, sym);
    }
    tok->sot_id = vocab_find(v, SOT_TEXT, strlen(SOT_TEXT));
    tok->eot_id = vocab_find(v, EOT_TEXT, strlen(EOT_TEXT));
    if (tok->sot_id < 0 || tok->eot_id < 0)
        return tl_fail(err, TL_ERR_FORMAT, "%s: %s or %s is missing", path, SOT_TEXT, EOT_TEXT);
    return TL_OK;
}

static tl_status load_vocab(tl_tokenizer *tok, vocab_index *v, const char *path, tl_error *err) {
    tl_status st = vocab_read(v, path, err);
    if (st == TL_OK && v->count == 0) st = tl_fail(err, TL_ERR_FORMAT, "%s: no tokens", path);
    tok->vocab_size = (int32_t)v->count;
    if (st == TL_OK) st = load_token_bytes(tok, v, path, err);
    return st == TL_OK ? load_symbol_ids(tok, v, path, err) : st;
}

/* Parses merge line `line` ("first second") as the next rank. */
static tl_status add_merge(tl_tokenizer *tok, const vocab_index *v, char *line, size_t line_no,
                           const char *path, tl_error *err) {
    char *space = strchr(line, ' ');
    if (!space || space == line || !space[1] || strchr(space + 1, ' '))
        return tl_fail(err, TL_ERR_FORMAT, "%s:%zu: expected two tokens separated by a space", path,
                       line_no);
    size_t first_len = (size_t)(space - line), second_len = strlen(space + 1);
    merge_rule rule = {vocab_find(v, line, first_len), vocab_find(v, space + 1, second_len), -1};
    memmove(space, space + 1, second_len + 1); /* the pair's concatenation */
    rule.result = vocab_find(v, line, first_len + second_len);
    if (rule.first < 0 || rule.second < 0 || rule.result < 0)
        return tl_fail(err, TL_ERR_FORMAT, "%s:%zu: merge of tokens not in the vocabulary", path,
                       line_no);
    merge_slot *slot = merge_slot_of(tok, merge_pair_key(rule.first, rule.second));
    slot->pair = merge_pair_key(rule.first, rule.second);
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
static tl_status load_merges(tl_tokenizer *tok, const vocab_index *v, const char *path,
                             tl_error *err) {
    char *text = NULL;
    size_t len = 0;
    tl_status st = read_whole_file(path, &text, &len, err);
    if (st != TL_OK) return st;
    size_t max_rules = 1;
    for (size_t i = 0; i < len; i++) max_rules += text[i] == '\n';
    if (strlen(text) != len) st = tl_fail(err, TL_ERR_FORMAT, "%s: holds a NUL byte", path);
    if (st == TL_OK && max_rules > INT32_MAX / 4)
        st = tl_fail(err, TL_ERR_LIMIT, "%s: too many lines", path);
    if (st == TL_OK) st = alloc_merge_tables(tok, max_rules, path, err);
    char *line = text;
    for (size_t line_no = 1; st == TL_OK && line < text + len; line_no++) {
        char *end = strchr(line, '\n');
        char *next = end ? end + 1 : text + len;
        if (!end) end = text + len;
        if (end > line && end[-1] == '\r') end--;
        *end = '\0';
        bool skip = *line == '\0' || (line_no == 1 && strncmp(line, "#version", 8) == 0);
        if (!skip) st = add_merge(tok, v, line, line_no, path, err);
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
    vocab_index v = {0};
    tl_status st = load_vocab(tok, &v, vocab_json_path, err);
    if (st == TL_OK) st = load_merges(tok, &v, merges_path, err);
    vocab_index_free(&v);
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
