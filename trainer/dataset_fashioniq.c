/* FashionIQ (captions/cap.CAT.SPLIT.json with image_splits/split.CAT.SPLIT.json) and
 * Multi-turn FashionIQ (CAT.SPLIT.json of transactions), proto/datasets.md. Images are
 * IMAGES/ASIN.jpg. Not for: downloading either data set. */
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

typedef struct fiq_reader {
    dataset *ds;
    size_t item_cap, record_cap;
    json_t *index_of; /* asin → item index (a jansson object used as a hash map) */
    const char *images;
    const char *category;
    int64_t limit;
} fiq_reader;

/* The item of asin, added (with its image path) when new. *index = -1 when the limit is
 * reached and the asin is new. */
static tl_status item_for_asin(fiq_reader *r, const char *asin, int64_t *index, tl_error *err) {
    const json_t *known = json_object_get(r->index_of, asin);
    if (known) {
        *index = json_integer_value(known);
        return TL_OK;
    }
    *index = -1;
    if (r->limit && r->ds->n_items >= (size_t)r->limit) return TL_OK;
    if (!*asin || strchr(asin, '/'))
        return tl_fail(err, TL_ERR_FORMAT, "bad image name \"%s\"", asin);
    dataset_item *item = ds_add_item(r->ds, &r->item_cap, (int64_t)r->ds->n_items);
    if (!item) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    int failed = 0;
    item->key = ds_strdup(asin, &failed);
    item->category = ds_strdup(r->category, &failed);
    failed |= asprintf(&item->image, "%s/%s.jpg", r->images, asin) < 0;
    if (failed) item->image = NULL;
    *index = (int64_t)(r->ds->n_items - 1);
    if (failed || json_object_set_new(r->index_of, asin, json_integer(*index)))
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    return TL_OK;
}

/* Loads dir/name, which must hold a list; each entry goes to fn with its position. */
typedef tl_status (*fiq_record_fn)(fiq_reader *r, const json_t *record, tl_error *err);

static tl_status for_each_record(fiq_reader *r, const char *dir, const char *name, fiq_record_fn fn,
                                 tl_error *err) {
    char *path = ds_join(dir, name);
    if (!path) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    json_t *root = NULL;
    tl_status st = ds_load_json(path, &root, err);
    if (!st && !json_is_array(root)) st = tl_fail(err, TL_ERR_FORMAT, "%s: must hold a list", path);
    for (size_t i = 0; !st && i < json_array_size(root); i++) {
        st = fn(r, json_array_get(root, i), err);
        if (st) tl_error_prefix(err, "%s: record %zu", path, i);
    }
    json_decref(root);
    free(path);
    return st;
}

static tl_status read_split_entry(fiq_reader *r, const json_t *record, tl_error *err) {
    int64_t index;
    if (!json_is_string(record)) return tl_fail(err, TL_ERR_FORMAT, "must be a string (an asin)");
    return item_for_asin(r, json_string_value(record), &index, err);
}

static tl_status read_caption_list(const json_t *list, const char *captions[2], size_t *n,
                                   tl_error *err) {
    if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > 2)
        return tl_fail(err, TL_ERR_FORMAT, "\"captions\" must be a list of 1 or 2 strings");
    *n = json_array_size(list);
    for (size_t i = 0; i < *n; i++) {
        captions[i] = json_string_value(json_array_get(list, i));
        if (!captions[i])
            return tl_fail(err, TL_ERR_FORMAT, "\"captions\"[%zu] must be a string", i);
    }
    return TL_OK;
}

static tl_status read_caption_record(fiq_reader *r, const json_t *record, tl_error *err) {
    const char *target, *candidate, *captions[2];
    size_t n_captions = 0;
    int64_t target_index = -1, candidate_index = -1;
    if (!json_is_object(record)) return tl_fail(err, TL_ERR_FORMAT, "must be an object");
    tl_status st = ds_get_string(record, "target", 1, &target, err);
    if (!st) st = ds_get_string(record, "candidate", 1, &candidate, err);
    if (!st)
        st = read_caption_list(json_object_get(record, "captions"), captions, &n_captions, err);
    if (!st) st = item_for_asin(r, candidate, &candidate_index, err);
    if (!st) st = item_for_asin(r, target, &target_index, err);
    if (st || candidate_index < 0 || target_index < 0) return st;
    dataset_triplet *t =
        ds_push((void **)&r->ds->triplets, &r->ds->n_triplets, &r->record_cap, sizeof *t);
    if (!t) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    t->reference = (size_t)candidate_index, t->target = (size_t)target_index;
    return ds_set_captions(t, captions, n_captions, err);
}

/* [url, asin] or [url, [captions], asin]: the asin is the last entry. */
static tl_status asin_of(const json_t *entry, size_t want_len, const char **asin, tl_error *err) {
    *asin = json_string_value(json_array_get(entry, want_len - 1));
    if (!json_is_array(entry) || json_array_size(entry) != want_len || !*asin)
        return tl_fail(err, TL_ERR_FORMAT, "must be a list of %zu entries ending in an asin",
                       want_len);
    return TL_OK;
}

static tl_status read_reference(fiq_reader *r, const json_t *entry, dataset_triplet *turn,
                                int *skip, tl_error *err) {
    const char *asin, *captions[2];
    size_t n = 0;
    int64_t index = -1;
    tl_status st = asin_of(entry, 3, &asin, err);
    if (!st) st = read_caption_list(json_array_get(entry, 1), captions, &n, err);
    if (!st) st = item_for_asin(r, asin, &index, err);
    if (st || index < 0) {
        *skip = 1;
        return st;
    }
    turn->reference = (size_t)index;
    return ds_set_captions(turn, captions, n, err);
}

static void free_turns(dataset_transaction *tx, size_t n) {
    for (size_t i = 0; i < n; i++) free(tx->turns[i].captions[0]), free(tx->turns[i].captions[1]);
    free(tx->turns);
}

static tl_status read_transaction_record(fiq_reader *r, const json_t *record, tl_error *err) {
    const json_t *references = json_object_get(record, "reference");
    const char *target;
    int64_t target_index = -1;
    int skip = 0;
    if (!json_is_object(record)) return tl_fail(err, TL_ERR_FORMAT, "must be an object");
    tl_status st = asin_of(json_object_get(record, "target"), 2, &target, err);
    if (st) return tl_error_prefix(err, "\"target\"");
    if (!json_is_array(references) || json_array_size(references) == 0)
        return tl_fail(err, TL_ERR_FORMAT, "\"reference\" must be a non-empty list");
    size_t n = json_array_size(references);
    dataset_transaction tx = {.turns = calloc(n, sizeof(dataset_triplet)), .n_turns = n};
    if (!tx.turns) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (size_t t = 0; t < n && !st && !skip; t++) {
        st = read_reference(r, json_array_get(references, t), &tx.turns[t], &skip, err);
        if (st) tl_error_prefix(err, "\"reference\"[%zu]", t);
    }
    if (!st && !skip) st = item_for_asin(r, target, &target_index, err);
    dataset_transaction *slot = NULL;
    if (!st && !skip && target_index >= 0) {
        slot = ds_push((void **)&r->ds->transactions, &r->ds->n_transactions, &r->record_cap,
                       sizeof *slot);
        if (!slot) st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    if (!slot) { /* an error, or an item past the limit */
        free_turns(&tx, n);
        return st;
    }
    for (size_t t = 0; t + 1 < n; t++) tx.turns[t].target = tx.turns[t + 1].reference;
    tx.turns[n - 1].target = tx.final_target = (size_t)target_index;
    *slot = tx;
    return TL_OK;
}

static tl_status start(fiq_reader *r, const train_dataset_config *cfg, dataset *ds, char **images,
                       tl_error *err) {
    *images = cfg->images ? strdup(cfg->images) : ds_join(cfg->path, "images");
    ds->source = strdup(cfg->path);
    *r = (fiq_reader){.ds = ds, .index_of = json_object(), .images = *images, .limit = cfg->limit};
    if (!*images || !ds->source || !r->index_of) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    return TL_OK;
}

static tl_status finish(fiq_reader *r, char *images, tl_status st, tl_error *err) {
    if (!st && r->ds->n_items == 0)
        st = tl_fail(err, TL_ERR_FORMAT, "%s: no images in this split", r->ds->source);
    if (!st) st = ds_finish(r->ds, err);
    json_decref(r->index_of);
    free(images);
    return st;
}

tl_status dataset_load_fashioniq(const train_dataset_config *cfg, dataset *ds, tl_error *err) {
    fiq_reader r;
    char *images = NULL, name[256];
    tl_status st = start(&r, cfg, ds, &images, err);
    for (size_t c = 0; c < cfg->n_categories && !st; c++) {
        r.category = cfg->categories[c];
        snprintf(name, sizeof name, "image_splits/split.%s.%s.json", r.category, cfg->split);
        st = for_each_record(&r, cfg->path, name, read_split_entry, err);
        snprintf(name, sizeof name, "captions/cap.%s.%s.json", r.category, cfg->split);
        if (!st) st = for_each_record(&r, cfg->path, name, read_caption_record, err);
    }
    return finish(&r, images, st, err);
}

tl_status dataset_load_fashioniq_multiturn(const train_dataset_config *cfg, dataset *ds,
                                           tl_error *err) {
    fiq_reader r;
    char *images = NULL, name[256];
    tl_status st = start(&r, cfg, ds, &images, err);
    for (size_t c = 0; c < cfg->n_categories && !st; c++) {
        r.category = cfg->categories[c];
        snprintf(name, sizeof name, "%s.%s.json", r.category, cfg->split);
        st = for_each_record(&r, cfg->path, name, read_transaction_record, err);
    }
    return finish(&r, images, st, err);
}
