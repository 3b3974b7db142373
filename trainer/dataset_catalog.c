/* JSON Lines data sets: a generic catalogue (proto/catalog.md fields) with optional triplet and
 * transaction files, and the demo set (the same files plus captions.jsonl and a split field;
 * proto/datasets.md). Not for: storing a catalogue for serving (index/ does that). */
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

typedef struct catalog_reader {
    dataset *ds;
    size_t cap;           /* of ds->items / ds->triplets / ds->transactions as in use */
    const char *base_dir; /* relative image paths start here */
    const char *split;    /* keep only lines whose "split" is this; NULL: keep all */
    int64_t limit;        /* at most this many items; 0 = all */
    int skip_unknown_ids; /* references to items not loaded are skipped, not errors */
} catalog_reader;

static tl_status copy_attributes(dataset_item *item, const json_t *attributes, tl_error *err) {
    if (!attributes) return TL_OK;
    if (!json_is_object(attributes))
        return tl_fail(err, TL_ERR_FORMAT, "\"attributes\" must be an object");
    size_t n = json_object_size(attributes), k = 0;
    item->attribute_names = calloc(n + 1, sizeof(char *));
    item->attribute_values = calloc(n + 1, sizeof(char *));
    int failed = !item->attribute_names || !item->attribute_values;
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)attributes, name, value) {
        if (failed) break;
        item->attribute_names[k] = ds_strdup(name, &failed);
        item->attribute_values[k] = json_is_string(value)
                                        ? ds_strdup(json_string_value(value), &failed)
                                        : json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        failed |= !item->attribute_values[k];
        item->n_attributes = ++k;
    }
    return failed ? tl_fail(err, TL_ERR_NOMEM, "out of memory") : TL_OK;
}

/* texts = [description] when it is non-empty, else [title] when that is, else none. */
static tl_status set_item_text(dataset_item *item, const char *description, tl_error *err) {
    const char *text = description && *description ? description : item->title;
    if (!text || !*text) return TL_OK;
    int failed = 0;
    item->texts = calloc(1, sizeof(char *));
    if (item->texts) item->texts[0] = ds_strdup(text, &failed);
    if (!item->texts || failed) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    item->n_texts = 1;
    return TL_OK;
}

static tl_status read_product_line(const json_t *obj, void *ctx, tl_error *err) {
    catalog_reader *r = ctx;
    const char *split = NULL, *image, *sku, *title, *description, *category, *subcategory;
    int64_t id;
    tl_status st = ds_get_id(obj, "id", &id, err);
    if (!st) st = ds_get_string(obj, "image", 1, &image, err);
    if (!st) st = ds_get_string(obj, "sku", 0, &sku, err);
    if (!st) st = ds_get_string(obj, "title", 0, &title, err);
    if (!st) st = ds_get_string(obj, "description", 0, &description, err);
    if (!st) st = ds_get_string(obj, "category", 0, &category, err);
    if (!st) st = ds_get_string(obj, "subcategory", 0, &subcategory, err);
    if (!st && r->split) st = ds_get_string(obj, "split", 1, &split, err);
    if (st) return st;
    if (split && strcmp(split, r->split)) return TL_OK;
    if (r->limit && r->ds->n_items >= (size_t)r->limit) return TL_OK;
    dataset_item *item = ds_add_item(r->ds, &r->cap, id);
    if (!item) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    int failed = 0;
    item->image = ds_join(r->base_dir, image);
    item->key = ds_strdup(sku, &failed);
    item->title = ds_strdup(title, &failed);
    item->category = ds_strdup(category, &failed);
    item->subcategory = ds_strdup(subcategory, &failed);
    if (failed || !item->image) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    st = set_item_text(item, description, err);
    return st ? st : copy_attributes(item, json_object_get(obj, "attributes"), err);
}

/* The item index of obj[key]; *index = -1 when it is not loaded and that may be skipped. */
static tl_status lookup_item(const catalog_reader *r, const json_t *obj, const char *key,
                             int64_t *index, tl_error *err) {
    int64_t id;
    tl_status st = ds_get_id(obj, key, &id, err);
    if (st) return st;
    *index = dataset_find_id(r->ds, id);
    if (*index < 0 && !r->skip_unknown_ids)
        return tl_fail(err, TL_ERR_FORMAT, "\"%s\": id %lld is not in the catalogue", key,
                       (long long)id);
    return TL_OK;
}

/* Reads {"reference", "caption", "target"} into t; *skip when an item is not loaded. */
static tl_status read_turn(const catalog_reader *r, const json_t *obj, dataset_triplet *t,
                           int *skip, tl_error *err) {
    int64_t reference, target;
    const char *caption;
    if (!json_is_object(obj)) return tl_fail(err, TL_ERR_FORMAT, "a turn must be an object");
    tl_status st = lookup_item(r, obj, "reference", &reference, err);
    if (!st) st = lookup_item(r, obj, "target", &target, err);
    if (!st) st = ds_get_string(obj, "caption", 1, &caption, err);
    if (st) return st;
    *skip = reference < 0 || target < 0;
    if (*skip) return TL_OK;
    t->reference = (size_t)reference, t->target = (size_t)target;
    return ds_set_captions(t, &caption, 1, err);
}

static tl_status read_triplet_line(const json_t *obj, void *ctx, tl_error *err) {
    catalog_reader *r = ctx;
    dataset_triplet turn = {0};
    int skip = 0;
    tl_status st = read_turn(r, obj, &turn, &skip, err);
    if (st || skip) {
        free(turn.captions[0]);
        return st;
    }
    dataset_triplet *t = ds_push((void **)&r->ds->triplets, &r->ds->n_triplets, &r->cap, sizeof *t);
    if (!t) {
        free(turn.captions[0]);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    *t = turn;
    return TL_OK;
}

static tl_status read_turns(const catalog_reader *r, const json_t *turns, dataset_transaction *tx,
                            int *skip, tl_error *err) {
    if (!json_is_array(turns) || json_array_size(turns) == 0)
        return tl_fail(err, TL_ERR_FORMAT, "\"turns\" must be a non-empty list");
    tx->turns = calloc(json_array_size(turns), sizeof *tx->turns);
    if (!tx->turns) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(turns) && !*skip; i++) {
        tl_status st = read_turn(r, json_array_get(turns, i), &tx->turns[i], skip, err);
        if (st) return tl_error_prefix(err, "turn %zu", i);
        tx->n_turns += !*skip;
    }
    return TL_OK;
}

static tl_status read_transaction_line(const json_t *obj, void *ctx, tl_error *err) {
    catalog_reader *r = ctx;
    dataset_transaction tx = {0};
    int64_t final_target = -1;
    int skip = 0;
    tl_status st = read_turns(r, json_object_get(obj, "turns"), &tx, &skip, err);
    if (!st) st = lookup_item(r, obj, "final_target", &final_target, err);
    skip |= final_target < 0;
    dataset_transaction *slot = NULL;
    if (!st && !skip) {
        slot =
            ds_push((void **)&r->ds->transactions, &r->ds->n_transactions, &r->cap, sizeof *slot);
        if (!slot) st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    if (slot) {
        tx.final_target = (size_t)final_target;
        *slot = tx;
        return TL_OK;
    }
    for (size_t i = 0; i < tx.n_turns; i++) free(tx.turns[i].captions[0]);
    free(tx.turns);
    return st;
}

/* demo captions.jsonl: {"id", "captions": [...]} replaces the item's texts. */
static tl_status read_captions_line(const json_t *obj, void *ctx, tl_error *err) {
    catalog_reader *r = ctx;
    int64_t id;
    tl_status st = ds_get_id(obj, "id", &id, err);
    if (st) return st;
    const json_t *captions = json_object_get(obj, "captions");
    if (!json_is_array(captions)) return tl_fail(err, TL_ERR_FORMAT, "\"captions\" must be a list");
    int64_t index = dataset_find_id(r->ds, id);
    if (index < 0) return TL_OK; /* the other split, or past the limit */
    dataset_item *item = &r->ds->items[index];
    size_t n = json_array_size(captions);
    char **texts = calloc(n + 1, sizeof *texts);
    int failed = !texts;
    for (size_t i = 0; i < n && !failed; i++) {
        const json_t *c = json_array_get(captions, i);
        if (!json_is_string(c)) {
            for (size_t k = 0; k < i; k++) free(texts[k]);
            free(texts);
            return tl_fail(err, TL_ERR_FORMAT, "\"captions\"[%zu] must be a string", i);
        }
        texts[i] = ds_strdup(json_string_value(c), &failed);
    }
    if (failed) {
        for (size_t k = 0; texts && k < n; k++) free(texts[k]);
        free(texts);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    for (size_t k = 0; k < item->n_texts; k++) free(item->texts[k]);
    free(item->texts);
    item->texts = texts, item->n_texts = n;
    return TL_OK;
}

static tl_status read_file(catalog_reader *r, const char *path, ds_line_fn fn, tl_error *err) {
    r->cap = 0; /* each file fills a different, so far empty, array */
    return ds_read_jsonl(path, fn, r, err);
}

static tl_status load_products(catalog_reader *r, const char *path, tl_error *err) {
    tl_status st = read_file(r, path, read_product_line, err);
    return st ? st : ds_finish(r->ds, err);
}

tl_status dataset_load_catalog(const train_dataset_config *cfg, dataset *ds, tl_error *err) {
    char *dir = ds_dirname(cfg->path);
    ds->source = strdup(cfg->path);
    if (!dir || !ds->source) {
        free(dir);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    catalog_reader r = {.ds = ds,
                        .base_dir = cfg->images ? cfg->images : dir,
                        .limit = cfg->limit,
                        .skip_unknown_ids = cfg->limit > 0};
    tl_status st = load_products(&r, cfg->path, err);
    if (!st && cfg->triplets) st = read_file(&r, cfg->triplets, read_triplet_line, err);
    if (!st && cfg->transactions) st = read_file(&r, cfg->transactions, read_transaction_line, err);
    free(dir);
    return st;
}

tl_status dataset_load_demo(const train_dataset_config *cfg, dataset *ds, tl_error *err) {
    char *catalogue = ds_join(cfg->path, "catalogue.jsonl");
    char *captions = ds_join(cfg->path, "captions.jsonl");
    char *triplets = NULL, *transactions = NULL;
    int failed = !catalogue || !captions ||
                 asprintf(&triplets, "%s/triplets-%s.jsonl", cfg->path, cfg->split) < 0 ||
                 asprintf(&transactions, "%s/transactions-%s.jsonl", cfg->path, cfg->split) < 0;
    ds->source = strdup(cfg->path);
    tl_status st = failed || !ds->source ? tl_fail(err, TL_ERR_NOMEM, "out of memory") : TL_OK;
    catalog_reader r = {.ds = ds,
                        .base_dir = cfg->images ? cfg->images : cfg->path,
                        .split = cfg->split,
                        .limit = cfg->limit,
                        .skip_unknown_ids = cfg->limit > 0};
    if (!st) st = load_products(&r, catalogue, err);
    if (!st && ds->n_items == 0)
        st = tl_fail(err, TL_ERR_FORMAT, "%s: no products in split \"%s\"", catalogue, cfg->split);
    if (!st) st = read_file(&r, captions, read_captions_line, err);
    if (!st) st = read_file(&r, triplets, read_triplet_line, err);
    if (!st) st = read_file(&r, transactions, read_transaction_line, err);
    free(catalogue), free(captions), free(triplets), free(transactions);
    return st;
}
