/* Text clean-up for the CLIP tokenizer, steps 1-3 of openai's simple_tokenizer without ftfy:
 * Python's html.unescape twice, str.strip, regex `\s+` → " ", str.lower. Input checks (size
 * limit, UTF-8) live here too. Not the pre-tokenizer or BPE (tokenizer.c). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unictype.h>
#include <unistr.h>

#include "html_entities.h"
#include "tokenizer.h"

#define HTML_NAME_MAX_CHARS 32 /* Python's `[^\t\n\f <&#;]{1,32}` */
#define UNICODE_MAX         0x10FFFFu

/* A growable array of code points; `failed` records an allocation failure. */
typedef struct u32_buf {
    uint32_t *data;
    size_t len, cap;
    bool failed;
} u32_buf;

static void u32_push(u32_buf *b, uint32_t c) {
    if (b->failed) return;
    if (b->len == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        uint32_t *data = realloc(b->data, cap * sizeof *data);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    b->data[b->len++] = c;
}

/* Appends the code points of a valid NUL-terminated UTF-8 string. */
static void u32_push_utf8(u32_buf *b, const char *s) {
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strlen(s);
    while (n > 0) {
        ucs4_t c;
        int k = u8_mbtouc_unsafe(&c, p, n);
        u32_push(b, c);
        p += k;
        n -= (size_t)k;
    }
}

tl_status tok_check_text(const char *text, size_t len, tl_error *err) {
    if (len > TOK_MAX_TEXT_BYTES)
        return tl_fail(err, TL_ERR_LIMIT, "text too long (%zu bytes, limit %u)", len,
                       TOK_MAX_TEXT_BYTES);
    if (len > 0 && !text) return tl_fail(err, TL_ERR_INVALID, "text is NULL");
    const uint8_t *bad = u8_check((const uint8_t *)text, len);
    if (bad)
        return tl_fail(err, TL_ERR_INVALID, "text is not valid UTF-8 (byte offset %zu)",
                       (size_t)(bad - (const uint8_t *)text));
    return TL_OK;
}

/* Python str.isspace: Unicode White_Space plus the separators U+001C..U+001F. */
static bool is_python_space(uint32_t c) {
    return uc_is_property_white_space(c) || (c >= 0x1C && c <= 0x1F);
}

static int compare_code(const void *key, const void *item) {
    uint32_t a = *(const uint32_t *)key, b = *(const uint32_t *)item;
    return (a > b) - (a < b);
}

static int compare_remap(const void *key, const void *item) {
    return compare_code(key, &((const html_charref_remap *)item)->code);
}

static int compare_entity(const void *key, const void *item) {
    return strcmp(key, ((const html_entity *)item)->name);
}

/* The value of the named reference s[0..n) (no '&'), or NULL when it is not an HTML5 name. */
static const char *named_entity(const uint32_t *s, size_t n) {
    char name[HTML_NAME_MAX_CHARS + 2];
    if (n >= sizeof name) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0 || s[i] >= 0x80) return NULL;
        name[i] = (char)s[i];
    }
    name[n] = '\0';
    const html_entity *e =
        bsearch(name, html_named_entities, html_named_entity_count, sizeof *e, compare_entity);
    return e ? e->value : NULL;
}

/* Python's _replace_charref for a numeric reference whose value is num (saturated). */
static void push_numeric_charref(u32_buf *out, uint32_t num) {
    const html_charref_remap *r =
        bsearch(&num, html_charref_remaps, html_charref_remap_count, sizeof *r, compare_remap);
    if (r)
        u32_push_utf8(out, r->value);
    else if ((num >= 0xD800 && num <= 0xDFFF) || num > UNICODE_MAX)
        u32_push(out, 0xFFFD);
    else if (!bsearch(&num, html_charref_dropped, html_charref_dropped_count, sizeof num,
                      compare_code))
        u32_push(out, num);
}

static int hex_digit_value(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

static int digit_value(uint32_t c, unsigned base) {
    int v = hex_digit_value(c);
    return v >= 0 && (unsigned)v < base ? v : -1;
}

/* Matches `#[0-9]+;?` or `#[xX][0-9a-fA-F]+;?` at s[i] (just after '&'); on a match appends the
 * replacement and returns the index after it, else returns i. Values beyond U+10FFFF saturate
 * (Python's int() would refuse more than 4300 decimal digits; we give U+FFFD instead). */
static size_t numeric_charref(const uint32_t *s, size_t n, size_t i, u32_buf *out) {
    unsigned base = 10;
    size_t j = i + 1;
    if (j < n && (s[j] == 'x' || s[j] == 'X')) {
        base = 16;
        j++;
    }
    if (j >= n || digit_value(s[j], base) < 0) return i;
    uint32_t num = 0;
    for (int d; j < n && (d = digit_value(s[j], base)) >= 0; j++)
        num = num > UNICODE_MAX ? num : num * base + (uint32_t)d;
    if (j < n && s[j] == ';') j++;
    push_numeric_charref(out, num);
    return j;
}

static bool in_html_name(uint32_t c) {
    return c != '\t' && c != '\n' && c != '\f' && c != ' ' && c != '<' && c != '&' && c != '#' &&
           c != ';';
}

/* Matches `[^\t\n\f <&#;]{1,32};?` at s[i] (just after '&') and applies Python's named-reference
 * rule: the whole name, else its longest prefix of at least 2 characters, else no change.
 * Returns the index after the consumed text (i when nothing was replaced). */
static size_t named_charref(const uint32_t *s, size_t n, size_t i, u32_buf *out) {
    size_t end = i;
    while (end < n && end - i < HTML_NAME_MAX_CHARS && in_html_name(s[end])) end++;
    if (end == i) return i;
    if (end < n && s[end] == ';') end++;
    const char *value = named_entity(s + i, end - i);
    size_t prefix = end - i;
    while (!value && --prefix >= 2) value = named_entity(s + i, prefix);
    if (!value) return i;
    u32_push_utf8(out, value);
    for (size_t k = i + prefix; k < end; k++) u32_push(out, s[k]);
    return end;
}

/* Python's html.unescape over s[0..n), appending to out. */
static void html_unescape(const uint32_t *s, size_t n, u32_buf *out) {
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&' || i + 1 >= n) {
            u32_push(out, s[i++]);
            continue;
        }
        size_t next =
            s[i + 1] == '#' ? numeric_charref(s, n, i + 1, out) : named_charref(s, n, i + 1, out);
        if (next == i + 1)
            u32_push(out, s[i++]);
        else
            i = next;
    }
}

/* str.strip(), then every run of regex `\s` (Unicode White_Space) becomes one space. Because
 * White_Space is a subset of isspace, the result needs no second strip. */
static void collapse_whitespace(const uint32_t *s, size_t n, u32_buf *out) {
    size_t begin = 0, end = n;
    while (begin < end && is_python_space(s[begin])) begin++;
    while (end > begin && is_python_space(s[end - 1])) end--;
    for (size_t i = begin; i < end; i++) {
        bool space = uc_is_property_white_space(s[i]);
        if (!space)
            u32_push(out, s[i]);
        else if (!uc_is_property_white_space(s[i - 1]))
            u32_push(out, ' ');
    }
}

/* Python's handle_capital_sigma: the Σ at s[i] is final (ς) when, skipping case-ignorable
 * characters, a cased character precedes it and no cased character follows. */
static bool sigma_is_final(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && uc_is_property_case_ignorable(s[j - 1])) j--;
    if (j == 0 || !uc_is_property_cased(s[j - 1])) return false;
    j = i + 1;
    while (j < n && uc_is_property_case_ignorable(s[j])) j++;
    return j == n || !uc_is_property_cased(s[j]);
}

/* Python str.lower(): the simple mapping, except U+0130 → "i\u0307" (SpecialCasing's one
 * unconditional multi-character lower-case) and the capital sigma's final form. */
static void lower_case(const uint32_t *s, size_t n, u32_buf *out) {
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0x130) {
            u32_push(out, 'i');
            u32_push(out, 0x307);
        } else if (s[i] == 0x3A3) {
            u32_push(out, sigma_is_final(s, n, i) ? 0x3C2 : 0x3C3);
        } else {
            u32_push(out, uc_tolower(s[i]));
        }
    }
}

/* Encodes s[0..n) as NUL-terminated UTF-8, malloc'd (caller frees); NULL when out of memory. */
static char *encode_utf8(const uint32_t *s, size_t n, size_t *out_len) {
    uint8_t *text = malloc(4 * n + 1);
    if (!text) return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)u8_uctomb(text + len, s[i], 4);
    text[len] = '\0';
    *out_len = len;
    return (char *)text;
}

static void decode_utf8(const char *text, size_t len, u32_buf *out) {
    const uint8_t *p = (const uint8_t *)text;
    while (len > 0) {
        ucs4_t c;
        int k = u8_mbtouc_unsafe(&c, p, len);
        u32_push(out, c);
        p += k;
        len -= (size_t)k;
    }
}

tl_status tok_clean(const char *text, size_t len, char **out, size_t *out_len, tl_error *err) {
    *out = NULL;
    tl_status st = tok_check_text(text, len, err);
    if (st != TL_OK) return st;
    u32_buf a = {0}, b = {0}, c = {0};
    decode_utf8(text, len, &a);
    html_unescape(a.data, a.len, &b);
    a.len = 0;
    html_unescape(b.data, b.len, &a);
    collapse_whitespace(a.data, a.len, &c);
    b.len = 0;
    lower_case(c.data, c.len, &b);
    if (!a.failed && !b.failed && !c.failed) *out = encode_utf8(b.data, b.len, out_len);
    free(a.data);
    free(b.data);
    free(c.data);
    if (!*out) return tl_fail(err, TL_ERR_NOMEM, "out of memory cleaning %zu bytes of text", len);
    return TL_OK;
}

char *tok_clean_text(const char *text, size_t len, tl_error *err) {
    char *clean;
    size_t clean_len;
    return tok_clean(text, len, &clean, &clean_len, err) == TL_OK ? clean : NULL;
}
