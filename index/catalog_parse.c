/* JSON Lines and RFC 4180 CSV catalogue readers sharing one product check (id range, duplicate
 * ids, image resolution and existence). Not for: writing catalogues. */
#include "catalog_parse.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "id_map.h"

typedef struct parser {
    const catalog_parse_opts *opts;
    catalog_parse_stats stats;
    id_map seen; /* id -> line of its first occurrence */
} parser;

static void report(parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(parser *ps, int line, const char *fmt, ...) {
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    ps->stats.issues++;
    if (ps->opts->on_issue) ps->opts->on_issue(line, message, ps->opts->ctx);
}

/* base_dir/path for relative paths (caller frees), or a copy of path. */
static char *resolve_image(const char *base_dir, const char *path) {
    char *out;
    if (path[0] == '/' || !base_dir) return strdup(path);
    return asprintf(&out, "%s/%s", base_dir, path) < 0 ? NULL : out;
}

/* Checks p (image_path as written in the file) and hands it on with the image resolved. */
static tl_status emit_product(parser *ps, catalog_product *p, int line, tl_error *err) {
    int32_t first_line;
    if (p->id < 0) {
        report(ps, line, "id %lld is negative", (long long)p->id);
        return TL_OK;
    }
    if (id_map_get(&ps->seen, p->id, &first_line)) {
        report(ps, line, "duplicate id %lld (first on line %d)", (long long)p->id, first_line);
        return TL_OK;
    }
    char *resolved = resolve_image(ps->opts->base_dir, p->image_path);
    if (!resolved) return tl_fail(err, TL_ERR_NOMEM, "catalogue: out of memory");
    tl_status st = TL_OK;
    if (ps->opts->check_images && access(resolved, R_OK) != 0) {
        report(ps, line, "image %s: %s", resolved, strerror(errno));
    } else if (!(st = id_map_put(&ps->seen, p->id, line, err))) {
        catalog_product resolved_p = *p;
        resolved_p.image_path = resolved;
        st = ps->opts->on_product(&resolved_p, line, ps->opts->ctx, err);
        ps->stats.products += !st;
    }
    free(resolved);
    return st;
}

/* --- JSON Lines --- */

/* Reads optional string member key of obj into *out (borrowed); 0 with a report if mistyped. */
static int json_string_member(parser *ps, int line, json_t *obj, const char *key,
                              const char **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 1;
    if (!json_is_string(v)) {
        report(ps, line, "\"%s\" must be a string", key);
        return 0;
    }
    *out = json_string_value(v);
    return 1;
}

static tl_status jsonl_product(parser *ps, int line, json_t *obj, tl_error *err) {
    json_t *id = json_object_get(obj, "id"), *attributes = json_object_get(obj, "attributes");
    if (!id) return report(ps, line, "missing \"id\""), TL_OK;
    if (!json_is_integer(id)) return report(ps, line, "\"id\" must be an integer"), TL_OK;
    if (attributes && !json_is_object(attributes))
        return report(ps, line, "\"attributes\" must be an object"), TL_OK;
    const char *s[6];
    const char *keys[6] = {"sku", "title", "description", "category", "subcategory", "image"};
    for (int i = 0; i < 6; i++)
        if (!json_string_member(ps, line, obj, keys[i], &s[i])) return TL_OK;
    if (!s[5] || !*s[5]) return report(ps, line, "missing \"image\""), TL_OK;
    char *attributes_text =
        attributes ? json_dumps(attributes, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    if (!attributes_text) return tl_fail(err, TL_ERR_NOMEM, "catalogue: out of memory");
    catalog_product p = {.id = json_integer_value(id),
                         .sku = (char *)s[0],
                         .title = (char *)s[1],
                         .description = (char *)s[2],
                         .category = (char *)s[3],
                         .subcategory = (char *)s[4],
                         .image_path = (char *)s[5],
                         .attributes = attributes_text};
    tl_status st = emit_product(ps, &p, line, err);
    free(attributes_text);
    return st;
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

static tl_status parse_jsonl(parser *ps, const char *text, size_t len, tl_error *err) {
    tl_status st = TL_OK;
    int line = 0;
    for (size_t pos = 0; pos < len && !st;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        if (!is_blank(text + pos, end - pos)) {
            json_error_t jerr;
            json_t *obj = json_loadb(text + pos, end - pos, JSON_REJECT_DUPLICATES, &jerr);
            if (!obj)
                report(ps, line, "invalid JSON at column %d: %s", jerr.column, jerr.text);
            else if (!json_is_object(obj))
                report(ps, line, "a product must be a JSON object");
            else
                st = jsonl_product(ps, line, obj, err);
            json_decref(obj);
        }
        pos = end + 1;
    }
    return st;
}

/* --- CSV (RFC 4180) --- */

enum {
    CSV_ID,
    CSV_SKU,
    CSV_TITLE,
    CSV_DESCRIPTION,
    CSV_CATEGORY,
    CSV_SUBCATEGORY,
    CSV_IMAGE,
    CSV_ATTRIBUTES,
    CSV_N_COLUMNS
};
static const char *const CSV_COLUMNS[CSV_N_COLUMNS] = {
    "id", "sku", "title", "description", "category", "subcategory", "image", "attributes"};
#define CSV_MAX_FIELDS 64

typedef struct csv_record {
    char *fields[CSV_MAX_FIELDS];
    int n_fields;
    int newlines; /* line breaks consumed, including the record's own terminator */
} csv_record;

static void csv_record_clear(csv_record *r) {
    for (int i = 0; i < r->n_fields; i++) free(r->fields[i]);
    *r = (csv_record){0};
}

/* Appends one field t[from, to) with quotes "" undone when quoted. */
static int csv_push_field(csv_record *r, const char *t, size_t from, size_t to, int quoted) {
    if (r->n_fields == CSV_MAX_FIELDS) return 0;
    char *f = malloc(to - from + 1), *w = f;
    if (!f) return 0;
    for (size_t i = from; i < to; i++) {
        *w++ = t[i];
        if (quoted && t[i] == '"') i++; /* "" -> " */
    }
    *w = 0;
    r->fields[r->n_fields++] = f;
    return 1;
}

/* Ends of a line break at i (\n or \r\n), or 0 when t[i] is not one. */
static size_t line_break_len(const char *t, size_t len, size_t i) {
    if (i < len && t[i] == '\n') return 1;
    if (i + 1 < len && t[i] == '\r' && t[i + 1] == '\n') return 2;
    return 0;
}

/* Reads one quoted field starting after its opening quote at *i; leaves *i after the closing
 * quote. Returns the end of its content, or 0 with why set. */
static size_t csv_quoted_field(const char *t, size_t len, size_t *i, csv_record *r,
                               const char **why) {
    for (size_t j = *i; j < len; j++) {
        if (t[j] == '\n') r->newlines++;
        if (t[j] != '"') continue;
        if (j + 1 < len && t[j + 1] == '"') {
            j++;
            continue;
        }
        *i = j + 1;
        return j;
    }
    *why = "unterminated quoted field";
    return 0;
}

/* Parses the record at *pos; on success *pos is past its line break. Returns 0 with why set on
 * a quoting error. */
static int csv_read_record(const char *t, size_t len, size_t *pos, csv_record *r,
                           const char **why) {
    size_t i = *pos;
    for (;;) {
        size_t from = i, to;
        int quoted = i < len && t[i] == '"';
        if (quoted) {
            i++;
            from = i;
            if (!(to = csv_quoted_field(t, len, &i, r, why))) return 0;
        } else {
            while (i < len && t[i] != ',' && !line_break_len(t, len, i)) {
                if (t[i] == '"') return *why = "quote inside an unquoted field", 0;
                i++;
            }
            to = i;
        }
        if (!csv_push_field(r, t, from, to, quoted)) return *why = "too many fields", 0;
        if (i < len && t[i] == ',') {
            i++;
            continue;
        }
        size_t brk = line_break_len(t, len, i);
        if (i < len && !brk) return *why = "text after a closing quote", 0;
        r->newlines += brk > 0;
        *pos = i + brk;
        return 1;
    }
}

static tl_status csv_product(parser *ps, int line, const csv_record *r, const int *column_of,
                             tl_error *err) {
    const char *v[CSV_N_COLUMNS];
    for (int c = 0; c < CSV_N_COLUMNS; c++)
        v[c] = column_of[c] >= 0 ? r->fields[column_of[c]] : NULL;
    char *end;
    errno = 0;
    long long id = strtoll(v[CSV_ID], &end, 10);
    if (!*v[CSV_ID] || *end || errno)
        return report(ps, line, "id '%s' is not an integer", v[CSV_ID]), TL_OK;
    if (!*v[CSV_IMAGE]) return report(ps, line, "missing image"), TL_OK;
    const char *attributes = v[CSV_ATTRIBUTES] && *v[CSV_ATTRIBUTES] ? v[CSV_ATTRIBUTES] : "{}";
    json_t *parsed = json_loads(attributes, 0, NULL);
    int ok = json_is_object(parsed);
    json_decref(parsed);
    if (!ok) return report(ps, line, "attributes must be a JSON object"), TL_OK;
    catalog_product p = {.id = id,
                         .sku = (char *)v[CSV_SKU],
                         .title = (char *)v[CSV_TITLE],
                         .description = (char *)v[CSV_DESCRIPTION],
                         .category = (char *)v[CSV_CATEGORY],
                         .subcategory = (char *)v[CSV_SUBCATEGORY],
                         .image_path = (char *)v[CSV_IMAGE],
                         .attributes = (char *)attributes};
    return emit_product(ps, &p, line, err);
}

/* Maps header names to columns; id and image are required, unknown names are an error. */
static tl_status csv_header(const csv_record *r, int *column_of, tl_error *err) {
    for (int c = 0; c < CSV_N_COLUMNS; c++) column_of[c] = -1;
    for (int i = 0; i < r->n_fields; i++) {
        int c = 0;
        while (c < CSV_N_COLUMNS && strcmp(r->fields[i], CSV_COLUMNS[c])) c++;
        if (c == CSV_N_COLUMNS)
            return tl_fail(err, TL_ERR_FORMAT, "line 1: unknown CSV column '%s'", r->fields[i]);
        column_of[c] = i;
    }
    if (column_of[CSV_ID] < 0 || column_of[CSV_IMAGE] < 0)
        return tl_fail(err, TL_ERR_FORMAT, "line 1: the CSV header needs 'id' and 'image'");
    return TL_OK;
}

static size_t next_line_start(const char *t, size_t len, size_t pos) {
    const char *nl = memchr(t + pos, '\n', len - pos);
    return nl ? (size_t)(nl - t) + 1 : len;
}

static tl_status parse_csv(parser *ps, const char *text, size_t len, tl_error *err) {
    csv_record r = {0};
    const char *why;
    size_t pos = 0;
    int column_of[CSV_N_COLUMNS];
    if (!csv_read_record(text, len, &pos, &r, &why)) {
        csv_record_clear(&r);
        return tl_fail(err, TL_ERR_FORMAT, "line 1: bad CSV header: %s", why);
    }
    tl_status st = csv_header(&r, column_of, err);
    int n_columns = r.n_fields, line = r.newlines;
    csv_record_clear(&r);
    while (!st && pos < len) {
        size_t start = pos;
        int record_line = line + 1;
        if (!csv_read_record(text, len, &pos, &r, &why)) {
            report(ps, record_line, "bad CSV quoting: %s", why);
            pos = next_line_start(text, len, start); /* resume on the next physical line */
            line = record_line;
        } else {
            line += r.newlines ? r.newlines : 1;
            int blank = r.n_fields == 1 && !*r.fields[0];
            if (!blank && r.n_fields != n_columns)
                report(ps, record_line, "%d fields, the header has %d", r.n_fields, n_columns);
            else if (!blank)
                st = csv_product(ps, record_line, &r, column_of, err);
        }
        csv_record_clear(&r);
    }
    return st;
}

tl_status catalog_parse_buffer(const char *text, size_t len, const catalog_parse_opts *opts,
                               catalog_parse_stats *stats, tl_error *err) {
    parser ps = {.opts = opts};
    tl_status st = opts->format == CATALOG_CSV ? parse_csv(&ps, text, len, err)
                                               : parse_jsonl(&ps, text, len, err);
    id_map_free(&ps.seen);
    if (stats) *stats = ps.stats;
    if (!st && opts->strict && ps.stats.issues)
        st = tl_fail(err, TL_ERR_FORMAT, "%lld problem(s) in the catalogue (strict mode)",
                     (long long)ps.stats.issues);
    return st;
}

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcasecmp(s + n - m, suffix);
}

/* The whole file in a malloc'd buffer (caller frees). */
static tl_status read_whole_file(const char *path, char **out, size_t *len, tl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            char *grown = realloc(buf, cap = cap ? 2 * cap : 1 << 16);
            if (!grown) break;
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    int failed = ferror(f) || n == cap;
    fclose(f);
    if (failed) {
        free(buf);
        return tl_fail(err, TL_ERR_IO, "cannot read %s", path);
    }
    *out = buf;
    *len = n;
    return TL_OK;
}

tl_status catalog_parse_file(const char *path, const catalog_parse_opts *opts,
                             catalog_parse_stats *stats, tl_error *err) {
    catalog_parse_opts o = *opts;
    if (has_suffix(path, ".csv"))
        o.format = CATALOG_CSV;
    else if (has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson"))
        o.format = CATALOG_JSONL;
    else
        return tl_fail(err, TL_ERR_UNSUPPORTED, "%s: catalogue must be .jsonl, .ndjson or .csv",
                       path);
    char *text = NULL, *dir_copy = strdup(path), *absolute = NULL;
    size_t len = 0;
    if (!dir_copy) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    absolute = realpath(dirname(dir_copy), NULL);
    o.base_dir = absolute;
    tl_status st = absolute ? TL_OK : tl_fail(err, TL_ERR_IO, "%s: %s", path, strerror(errno));
    if (!st && !(st = read_whole_file(path, &text, &len, err))) {
        st = catalog_parse_buffer(text, len, &o, stats, err);
        free(text);
    }
    free(dir_copy);
    free(absolute);
    return st ? tl_error_prefix(err, "%s", path) : TL_OK;
}
