/* request_body.h: a field table per body (name, JSON type, required), one generic check of
 * the object against its table, then small typed readers. */
#include "request_body.h"

#include "base64.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct field_spec {
    const char *name;
    json_type type;
} field_spec;

static int reject(request_error *e, api_error code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int reject(request_error *e, api_error code, const char *fmt, ...) {
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *type_name(json_type t) {
    switch (t) {
        case JSON_OBJECT:
            return "an object";
        case JSON_ARRAY:
            return "an array";
        case JSON_STRING:
            return "a string";
        case JSON_INTEGER:
            return "an integer";
        default:
            return "a value of another type";
    }
}

/* Checks every key of obj is in fields (n of them) with the declared type. Key names quoted
 * in messages are cut at 64 bytes (and at invalid UTF-8 by the caller's JSON writer). */
static int check_fields(json_t *obj, const field_spec *fields, int n, const char *where,
                        request_error *e) {
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
        int i = 0;
        while (i < n && strcmp(fields[i].name, key)) i++;
        if (i == n) return reject(e, API_UNKNOWN_FIELD, "unknown field '%.64s'%s", key, where);
        if (json_typeof(value) != fields[i].type)
            return reject(e, API_INVALID_FIELD, "field '%s'%s must be %s", key, where,
                          type_name(fields[i].type));
    }
    return 0;
}

/* Parses body as one JSON object with fields from the table. New reference or NULL. */
static json_t *parse_object(const uint8_t *body, size_t len, const field_spec *fields, int n,
                            request_error *e) {
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        reject(e, API_BAD_JSON, "invalid JSON at position %d: %.120s", jerr.position, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        reject(e, API_BAD_JSON, "the body must be a JSON object");
        return NULL;
    }
    if (check_fields(root, fields, n, "", e)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int read_text(json_t *obj, const char *name, char **out, request_error *e) {
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    size_t len = json_string_length(v);
    if (len == 0 || len > REQUEST_TEXT_MAX_BYTES)
        return reject(e, API_INVALID_FIELD, "field '%s' must have 1 to %d bytes", name,
                      REQUEST_TEXT_MAX_BYTES);
    *out = strdup(json_string_value(v));
    return *out ? 0 : reject(e, API_INTERNAL, "out of memory");
}

static int read_image(json_t *obj, const char *name, decoded_image *out, request_error *e) {
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    if (!base64_decode(json_string_value(v), json_string_length(v), &out->bytes, &out->len) &&
        out->len)
        return 0;
    free(out->bytes);
    *out = (decoded_image){0};
    return reject(e, API_INVALID_BASE64, "field '%s' is not valid base64 image data", name);
}

static int read_int(json_t *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                    request_error *e) {
    json_t *v = json_object_get(obj, name);
    if (!v) return 0;
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return reject(e, API_INVALID_FIELD, "field '%s' must be in [%lld, %lld]", name,
                      (long long)min, (long long)max);
    *out = x;
    return 0;
}

static int read_filter(json_t *obj, search_request *out, request_error *e) {
    static const field_spec fields[] = {{"category", JSON_STRING}, {"subcategory", JSON_STRING}};
    json_t *filter = json_object_get(obj, "filter");
    if (!filter) return 0;
    if (check_fields(filter, fields, 2, " of filter", e)) return -1;
    return read_text(filter, "category", &out->category, e) ||
                   read_text(filter, "subcategory", &out->subcategory, e)
               ? -1
               : 0;
}

/* The shared part of search and turn bodies; id_field names the item id field. */
static int read_query(json_t *obj, const char *id_field, search_request *out, request_error *e) {
    int64_t limit = SEARCH_LIMIT_DEFAULT, offset = 0;
    if (read_text(obj, "text", &out->text, e) || read_image(obj, "image", &out->image, e) ||
        read_int(obj, id_field, 0, INT64_MAX, &out->item_id, e) || read_filter(obj, out, e) ||
        read_int(obj, "limit", 1, SEARCH_LIMIT_MAX, &limit, e) ||
        read_int(obj, "offset", 0, SEARCH_OFFSET_MAX, &offset, e))
        return -1;
    out->limit = (int)limit;
    out->offset = (int)offset;
    if (out->image.bytes && out->item_id >= 0)
        return reject(e, API_INVALID_FIELD, "give 'image' or '%s', not both", id_field);
    return 0;
}

static int parse_query_body(const uint8_t *body, size_t len, const char *id_field,
                            search_request *out, request_error *e) {
    const field_spec fields[] = {{"text", JSON_STRING},    {"image", JSON_STRING},
                                 {id_field, JSON_INTEGER}, {"filter", JSON_OBJECT},
                                 {"limit", JSON_INTEGER},  {"offset", JSON_INTEGER}};
    memset(out, 0, sizeof *out);
    out->item_id = -1;
    json_t *root = parse_object(body, len, fields, 6, e);
    int rc = root ? read_query(root, id_field, out, e) : -1;
    json_decref(root);
    if (rc) search_request_free(out);
    return rc;
}

int parse_search_request(const uint8_t *body, size_t len, search_request *out, request_error *e) {
    if (parse_query_body(body, len, "item_id", out, e)) return -1;
    if (!out->text && !out->image.bytes && out->item_id < 0) {
        search_request_free(out);
        return reject(e, API_MISSING_FIELD, "give at least one of 'text', 'image', 'item_id'");
    }
    return 0;
}

int parse_turn_request(const uint8_t *body, size_t len, search_request *out, request_error *e) {
    if (parse_query_body(body, len, "reference_item_id", out, e)) return -1;
    if (!out->text && !out->image.bytes && out->item_id < 0) {
        search_request_free(out);
        return reject(e, API_MISSING_FIELD,
                      "give at least one of 'text', 'image', 'reference_item_id'");
    }
    return 0;
}

static int read_string_array(json_t *array, const char *name, int is_image, embed_request *out,
                             request_error *e) {
    size_t n = json_array_size(array), i;
    json_t *v;
    if (is_image)
        out->images = calloc(n ? n : 1, sizeof *out->images);
    else
        out->texts = calloc(n ? n : 1, sizeof *out->texts);
    if (is_image ? !out->images : !out->texts) return reject(e, API_INTERNAL, "out of memory");
    json_array_foreach(array, i, v) {
        if (!json_is_string(v))
            return reject(e, API_INVALID_FIELD, "'%s'[%zu] must be a string", name, i);
        json_t *holder = json_pack("{s:O}", name, v);
        int rc = is_image ? read_image(holder, name, &out->images[i], e)
                          : read_text(holder, name, &out->texts[i], e);
        json_decref(holder);
        if (rc) return -1;
        if (is_image)
            out->n_images++;
        else
            out->n_texts++;
    }
    return 0;
}

int parse_embed_request(const uint8_t *body, size_t len, int max_items, embed_request *out,
                        request_error *e) {
    static const field_spec fields[] = {{"texts", JSON_ARRAY}, {"images", JSON_ARRAY}};
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(body, len, fields, 2, e);
    if (!root) return -1;
    json_t *texts = json_object_get(root, "texts"), *images = json_object_get(root, "images");
    size_t total = json_array_size(texts) + json_array_size(images);
    int rc = 0;
    if (total == 0)
        rc = reject(e, API_MISSING_FIELD, "give at least one text or image");
    else if (total > (size_t)max_items)
        rc = reject(e, API_INVALID_FIELD, "at most %d texts and images together", max_items);
    if (!rc && texts) rc = read_string_array(texts, "texts", 0, out, e);
    if (!rc && images) rc = read_string_array(images, "images", 1, out, e);
    json_decref(root);
    if (rc) embed_request_free(out);
    return rc;
}

int parse_item_request(const uint8_t *body, size_t len, item_request *out, request_error *e) {
    static const field_spec fields[] = {{"sku", JSON_STRING},
                                        {"title", JSON_STRING},
                                        {"category", JSON_STRING},
                                        {"subcategory", JSON_STRING},
                                        {"image", JSON_STRING}};
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(body, len, fields, 5, e);
    if (!root) return -1;
    int rc = 0;
    if (!json_object_get(root, "title") || !json_object_get(root, "category") ||
        !json_object_get(root, "image"))
        rc = reject(e, API_MISSING_FIELD, "'title', 'category' and 'image' are required");
    if (!rc)
        rc = read_text(root, "sku", &out->sku, e) || read_text(root, "title", &out->title, e) ||
             read_text(root, "category", &out->category, e) ||
             read_text(root, "subcategory", &out->subcategory, e) ||
             read_image(root, "image", &out->image, e);
    json_decref(root);
    if (rc) {
        item_request_free(out);
        return -1;
    }
    if (!out->sku) out->sku = strdup("");
    if (!out->subcategory) out->subcategory = strdup("");
    if (!out->sku || !out->subcategory) {
        item_request_free(out);
        return reject(e, API_INTERNAL, "out of memory");
    }
    return 0;
}

static int read_labels(json_t *array, classify_request *out, request_error *e) {
    size_t n = json_array_size(array), i;
    json_t *v;
    if (n == 0 || n > CLASSIFY_MAX_LABELS)
        return reject(e, API_INVALID_FIELD, "'labels' must hold 1 to %d strings",
                      CLASSIFY_MAX_LABELS);
    out->labels = calloc(n, sizeof *out->labels);
    if (!out->labels) return reject(e, API_INTERNAL, "out of memory");
    json_array_foreach(array, i, v) {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 256)
            return reject(e, API_INVALID_FIELD, "'labels'[%zu] must be a string of 1 to 256 bytes",
                          i);
        if (!(out->labels[i] = strdup(json_string_value(v))))
            return reject(e, API_INTERNAL, "out of memory");
        out->n_labels++;
    }
    return 0;
}

int parse_classify_request(const uint8_t *body, size_t len, classify_request *out,
                           request_error *e) {
    static const field_spec fields[] = {
        {"image", JSON_STRING}, {"text", JSON_STRING}, {"labels", JSON_ARRAY}};
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(body, len, fields, 3, e);
    if (!root) return -1;
    json_t *labels = json_object_get(root, "labels");
    int rc = !json_object_get(root, "image") ? reject(e, API_MISSING_FIELD, "'image' is required")
                                             : read_image(root, "image", &out->image, e) ||
                                                   read_text(root, "text", &out->text, e) ||
                                                   (labels && read_labels(labels, out, e));
    json_decref(root);
    if (rc) classify_request_free(out);
    return rc ? -1 : 0;
}

int parse_caption_request(const uint8_t *body, size_t len, caption_request *out, request_error *e) {
    static const field_spec fields[] = {
        {"image", JSON_STRING}, {"beam", JSON_INTEGER}, {"max_tokens", JSON_INTEGER}};
    memset(out, 0, sizeof *out);
    json_t *root = parse_object(body, len, fields, 3, e);
    if (!root) return -1;
    int64_t beam = 1, max_tokens = 0;
    int rc = !json_object_get(root, "image")
                 ? reject(e, API_MISSING_FIELD, "'image' is required")
                 : read_image(root, "image", &out->image, e) ||
                       read_int(root, "beam", 1, CAPTION_MAX_BEAM, &beam, e) ||
                       read_int(root, "max_tokens", 2, 77, &max_tokens, e);
    json_decref(root);
    out->beam = (int)beam;
    out->max_tokens = (int)max_tokens;
    if (rc) caption_request_free(out);
    return rc ? -1 : 0;
}

int parse_empty_request(const uint8_t *body, size_t len, request_error *e) {
    if (len == 0) return 0;
    json_t *root = parse_object(body, len, NULL, 0, e);
    json_decref(root);
    return root ? 0 : -1;
}

void search_request_free(search_request *r) {
    free(r->text);
    free(r->image.bytes);
    free(r->category);
    free(r->subcategory);
    memset(r, 0, sizeof *r);
    r->item_id = -1;
}

void embed_request_free(embed_request *r) {
    for (int i = 0; i < r->n_texts; i++) free(r->texts[i]);
    for (int i = 0; i < r->n_images; i++) free(r->images[i].bytes);
    free(r->texts);
    free(r->images);
    memset(r, 0, sizeof *r);
}

void item_request_free(item_request *r) {
    free(r->sku);
    free(r->title);
    free(r->category);
    free(r->subcategory);
    free(r->image.bytes);
    memset(r, 0, sizeof *r);
}

void classify_request_free(classify_request *r) {
    free(r->image.bytes);
    free(r->text);
    for (int i = 0; i < r->n_labels; i++) free(r->labels[i]);
    free(r->labels);
    memset(r, 0, sizeof *r);
}

void caption_request_free(caption_request *r) {
    free(r->image.bytes);
    memset(r, 0, sizeof *r);
}

int64_t parse_item_id(const char *text) {
    size_t len = text ? strlen(text) : 0;
    if (len == 0 || len > 18 || strspn(text, "0123456789") != len) return -1;
    return strtoll(text, NULL, 10);
}
