/* The format-independent half of trainer/dataset.h: dispatch to the loaders, the id index and
 * labels, freeing, and the helpers of dataset_internal.h. Not for: any one format. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

void *ds_push(void **array, size_t *n, size_t *cap, size_t size) {
    if (*n == *cap) {
        size_t grown = *cap ? 2 * *cap : 16;
        void *p = realloc(*array, grown * size);
        if (!p) return NULL;
        *array = p, *cap = grown;
    }
    void *element = (char *)*array + (*n)++ * size;
    memset(element, 0, size);
    return element;
}

dataset_item *ds_add_item(dataset *ds, size_t *cap, int64_t id) {
    dataset_item *item = ds_push((void **)&ds->items, &ds->n_items, cap, sizeof *item);
    if (item) item->id = item->product = id, item->label = -1;
    return item;
}

char *ds_strdup(const char *s, int *failed) {
    if (!s) return NULL;
    char *copy = strdup(s);
    if (!copy) *failed = 1;
    return copy;
}

char *ds_join(const char *dir, const char *name) {
    if (!dir || name[0] == '/') return strdup(name);
    char *joined = NULL;
    return asprintf(&joined, "%s/%s", dir, name) < 0 ? NULL : joined;
}

char *ds_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

tl_status ds_read_jsonl(const char *path, ds_line_fn fn, void *ctx, tl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    tl_status st = TL_OK;
    for (long number = 1; !st && (len = getline(&line, &cap, f)) >= 0; number++) {
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)len, 0, &jerr);
        if (!obj)
            st = tl_fail(err, TL_ERR_FORMAT, "column %d: %s", jerr.column, jerr.text);
        else if (!json_is_object(obj))
            st = tl_fail(err, TL_ERR_FORMAT, "not a JSON object");
        else
            st = fn(obj, ctx, err);
        json_decref(obj);
        if (st) tl_error_prefix(err, "%s:%ld", path, number);
    }
    if (!st && ferror(f)) st = tl_fail(err, TL_ERR_IO, "%s: read error", path);
    free(line);
    fclose(f);
    return st;
}

tl_status ds_load_json(const char *path, json_t **root, tl_error *err) {
    json_error_t jerr;
    *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (*root) return TL_OK;
    if (jerr.line < 1) return tl_fail(err, TL_ERR_IO, "%s: %s", path, jerr.text);
    return tl_fail(err, TL_ERR_FORMAT, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
}

tl_status ds_get_string(const json_t *obj, const char *key, int required, const char **out,
                        tl_error *err) {
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) return tl_fail(err, TL_ERR_FORMAT, "\"%s\" is missing", key);
        return TL_OK;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return tl_fail(err, TL_ERR_FORMAT, "\"%s\" must be a string", key);
    *out = json_string_value(v);
    return TL_OK;
}

tl_status ds_get_id(const json_t *obj, const char *key, int64_t *out, tl_error *err) {
    const json_t *v = json_object_get(obj, key);
    if (!v) return tl_fail(err, TL_ERR_FORMAT, "\"%s\" is missing", key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return tl_fail(err, TL_ERR_FORMAT, "\"%s\" must be an integer ≥ 0", key);
    *out = json_integer_value(v);
    return TL_OK;
}

tl_status ds_set_captions(dataset_triplet *t, const char *const *captions, size_t n,
                          tl_error *err) {
    int failed = 0;
    if (n < 1 || n > 2) return tl_fail(err, TL_ERR_FORMAT, "needs 1 or 2 captions, got %zu", n);
    for (size_t i = 0; i < n; i++) t->captions[i] = ds_strdup(captions[i], &failed);
    t->n_captions = n;
    return failed ? tl_fail(err, TL_ERR_NOMEM, "out of memory") : TL_OK;
}

static const dataset *sort_context; /* qsort has no context argument */

static int compare_by_id(const void *a, const void *b) {
    int64_t x = sort_context->items[*(const size_t *)a].id;
    int64_t y = sort_context->items[*(const size_t *)b].id;
    return (x > y) - (x < y);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static tl_status build_id_index(dataset *ds, tl_error *err) {
    ds->by_id = malloc((ds->n_items + 1) * sizeof *ds->by_id);
    if (!ds->by_id) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", ds->source);
    for (size_t i = 0; i < ds->n_items; i++) ds->by_id[i] = i;
    sort_context = ds;
    qsort(ds->by_id, ds->n_items, sizeof *ds->by_id, compare_by_id);
    for (size_t i = 1; i < ds->n_items; i++)
        if (ds->items[ds->by_id[i]].id == ds->items[ds->by_id[i - 1]].id)
            return tl_fail(err, TL_ERR_FORMAT, "%s: id %lld is used twice", ds->source,
                           (long long)ds->items[ds->by_id[i]].id);
    return TL_OK;
}

const char *dataset_scr_text(const dataset_item *item) {
    return item->title ? item->title : item->n_texts ? item->texts[0] : "";
}

tl_status dataset_read_image(const dataset *ds, size_t i, tl_image *out, tl_error *err) {
    memset(out, 0, sizeof *out);
    if (i >= ds->n_items)
        return tl_fail(err, TL_ERR_INVALID, "%s: item %zu of %zu", ds->source, i, ds->n_items);
    if (ds->items[i].image) return img_load_file(ds->items[i].image, NULL, out, err);
    if (ds->hdf5) return ds_hdf5_read_image(ds->hdf5, (size_t)ds->items[i].id, out, err);
    return tl_fail(err, TL_ERR_NOT_FOUND, "%s: item %zu has no image", ds->source, i);
}

int64_t dataset_find_id(const dataset *ds, int64_t id) {
    size_t lo = 0, hi = ds->n_items;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t at = ds->items[ds->by_id[mid]].id;
        if (at == id) return (int64_t)ds->by_id[mid];
        if (at < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* labels = the distinct subcategories, sorted; each item's label indexes it. */
static tl_status build_labels(dataset *ds, tl_error *err) {
    char **names = malloc((ds->n_items + 1) * sizeof *names);
    if (!names) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", ds->source);
    size_t n = 0;
    for (size_t i = 0; i < ds->n_items; i++)
        if (ds->items[i].subcategory) names[n++] = ds->items[i].subcategory;
    qsort(names, n, sizeof *names, compare_strings);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (!distinct || strcmp(names[i], names[distinct - 1])) names[distinct++] = names[i];
    ds->labels = calloc(distinct + 1, sizeof *ds->labels);
    int failed = !ds->labels;
    for (size_t i = 0; i < distinct && !failed; i++) ds->labels[i] = ds_strdup(names[i], &failed);
    free(names);
    if (failed) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", ds->source);
    ds->n_labels = distinct;
    for (size_t i = 0; i < ds->n_items; i++) {
        if (!ds->items[i].subcategory) continue;
        char **found = bsearch(&ds->items[i].subcategory, ds->labels, distinct, sizeof *ds->labels,
                               compare_strings);
        ds->items[i].label = (int32_t)(found - ds->labels);
    }
    return TL_OK;
}

tl_status ds_finish(dataset *ds, tl_error *err) {
    tl_status st = build_id_index(ds, err);
    if (!st) st = build_labels(ds, err);
    return st;
}

tl_status dataset_open(const train_dataset_config *cfg, dataset *ds, tl_error *err) {
    memset(ds, 0, sizeof *ds);
    tl_status st;
    switch (cfg->kind) {
        case TRAIN_DATA_DEMO:
            st = dataset_load_demo(cfg, ds, err);
            break;
        case TRAIN_DATA_CATALOG:
            st = dataset_load_catalog(cfg, ds, err);
            break;
        case TRAIN_DATA_FASHIONIQ:
            st = dataset_load_fashioniq(cfg, ds, err);
            break;
        case TRAIN_DATA_FASHIONIQ_MULTITURN:
            st = dataset_load_fashioniq_multiturn(cfg, ds, err);
            break;
        case TRAIN_DATA_FASHIONGEN:
            st = dataset_load_fashiongen(cfg, ds, err);
            break;
        default:
            return tl_fail(err, TL_ERR_INVALID, "dataset: unknown kind %d", cfg->kind);
    }
    if (st) dataset_free(ds);
    return st;
}

static void free_strings(char **strings, size_t n) {
    for (size_t i = 0; strings && i < n; i++) free(strings[i]);
    free(strings);
}

static void free_item(dataset_item *item) {
    free(item->key), free(item->image), free(item->title), free(item->category);
    free(item->subcategory);
    free_strings(item->texts, item->n_texts);
    free_strings(item->attribute_names, item->n_attributes);
    free_strings(item->attribute_values, item->n_attributes);
}

static void free_triplets(dataset_triplet *t, size_t n) {
    for (size_t i = 0; t && i < n; i++) free(t[i].captions[0]), free(t[i].captions[1]);
    free(t);
}

void dataset_free(dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_items; i++) free_item(&ds->items[i]);
    free(ds->items);
    free_strings(ds->labels, ds->n_labels);
    free_triplets(ds->triplets, ds->n_triplets);
    for (size_t i = 0; i < ds->n_transactions; i++)
        free_triplets(ds->transactions[i].turns, ds->transactions[i].n_turns);
    free(ds->transactions);
    if (ds->hdf5) ds_hdf5_close(ds->hdf5);
    free(ds->by_id);
    free(ds->source);
    memset(ds, 0, sizeof *ds);
}
