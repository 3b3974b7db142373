/* search_service.h over an index directory (index/index_dir.h): the read-only SQLite catalogue,
 * one vector_index per space loaded from its gallery file, and the online changes: an overlay of
 * catalogue rows (id -> item, or null for a removed item) in front of the catalogue, applied to
 * the live vector indexes and journalled in the state directory before they are acknowledged. */
#include "search_service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_store.h"
#include "image.h"
#include "index_dir.h"
#include "vector_index.h"

/* The gallery file each space searches. */
static const index_gallery space_gallery[SPACE_COUNT] = {GALLERY_XMR_IMAGE, GALLERY_TGIR_TARGET};
static const char *const journal_vector_keys[SPACE_COUNT] = {"embedding_xmr", "embedding_tgir"};

struct search_service {
    pthread_rwlock_t lock; /* guards overlay, categories and the journal; the vector indexes
                              have their own locks */
    char *index_dir, *state_dir;
    tl_model *model; /* item embeddings for item queries; on the model's thread only */
    size_t max_pixels;
    int dim;
    index_manifest manifest;
    catalog_store *catalog;
    vector_index *galleries[SPACE_COUNT];
    json_t *overlay;    /* "id" -> {sku, title, category, subcategory, image} or null */
    json_t *categories; /* every category seen: name -> true */
    int64_t journal_entries;
};

/* ---- items: overlay first, then the catalogue ---- */

static char *dup_or_empty(const char *text) {
    return strdup(text ? text : "");
}

/* Writes the absolute form of an image path (relative ones are under the index directory). */
static void resolve_path(const search_service *s, const char *image_path, char *out, size_t size) {
    if (image_path[0] == '/')
        snprintf(out, size, "%s", image_path);
    else
        snprintf(out, size, "%s/%s", s->index_dir, image_path);
}

static const char *field(json_t *item, const char *name) {
    const char *v = json_string_value(json_object_get(item, name));
    return v ? v : "";
}

/* Fills *out with item id (strings owned by the caller: catalog_product_clear). Returns 1 when
 * found, 0 when absent or removed. Lock held. */
static int item_lookup(search_service *s, int64_t id, catalog_product *out) {
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)id);
    json_t *item = json_object_get(s->overlay, key);
    *out = (catalog_product){.id = id};
    if (json_is_null(item)) return 0;
    if (!item) {
        tl_error err = {0};
        return catalog_get(s->catalog, id, out, &err) == TL_OK;
    }
    *out = (catalog_product){.id = id,
                             .sku = dup_or_empty(field(item, "sku")),
                             .title = dup_or_empty(field(item, "title")),
                             .category = dup_or_empty(field(item, "category")),
                             .subcategory = dup_or_empty(field(item, "subcategory")),
                             .image_path = dup_or_empty(field(item, "image"))};
    return out->sku && out->title && out->category && out->subcategory && out->image_path;
}

static int note_category(const catalog_product *p, void *ctx) {
    json_object_set_new(ctx, p->category ? p->category : "", json_true());
    return 0;
}

/* ---- changes: applied to the galleries and the overlay; lock held ---- */

static tl_status apply_upsert(search_service *s, json_t *item, const float *const vectors[],
                              tl_error *err) {
    int64_t id = json_integer_value(json_object_get(item, "id"));
    const char *category = field(item, "category");
    tl_status st = TL_OK;
    for (int g = 0; g < SPACE_COUNT && !st; g++)
        st = vector_index_add(s->galleries[g], category, &id, vectors[g], 1, err);
    if (st) return st;
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)id);
    json_object_set(s->overlay, key, item);
    json_object_set_new(s->categories, category, json_true());
    return TL_OK;
}

static tl_status apply_remove(search_service *s, int64_t id, tl_error *err) {
    tl_status st = TL_OK;
    for (int g = 0; g < SPACE_COUNT && !st; g++)
        st = vector_index_remove(s->galleries[g], &id, 1, NULL, err);
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)id);
    if (!st) json_object_set_new(s->overlay, key, json_null());
    return st;
}

/* ---- the journal (state_dir/journal.jsonl) ---- */

static tl_status replay_upsert(search_service *s, json_t *entry, tl_error *err) {
    json_t *item = json_object_get(entry, "item");
    int ok = json_is_integer(json_object_get(item, "id"));
    for (int g = 0; g < SPACE_COUNT; g++)
        ok &= json_array_size(json_object_get(entry, journal_vector_keys[g])) == (size_t)s->dim;
    if (!ok) return tl_fail(err, TL_ERR_FORMAT, "not an upsert entry of width %d", s->dim);
    float *v = malloc(SPACE_COUNT * (size_t)s->dim * sizeof *v);
    if (!v) return tl_fail(err, TL_ERR_NOMEM, "embedding");
    const float *rows[SPACE_COUNT];
    for (int g = 0; g < SPACE_COUNT; g++) {
        json_t *vector = json_object_get(entry, journal_vector_keys[g]);
        for (int i = 0; i < s->dim; i++)
            v[g * s->dim + i] = (float)json_number_value(json_array_get(vector, (size_t)i));
        rows[g] = v + g * s->dim;
    }
    tl_status st = apply_upsert(s, item, rows, err);
    free(v);
    return st;
}

static tl_status replay_entry(search_service *s, json_t *entry, tl_error *err) {
    const char *op = json_string_value(json_object_get(entry, "op"));
    if (op && !strcmp(op, "remove"))
        return apply_remove(s, json_integer_value(json_object_get(entry, "id")), err);
    if (op && !strcmp(op, "upsert")) return replay_upsert(s, entry, err);
    return tl_fail(err, TL_ERR_FORMAT, "not an upsert or remove entry");
}

/* Replays journal.jsonl (absent = nothing to replay). */
static tl_status replay_journal(search_service *s, tl_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/journal.jsonl", s->state_dir);
    FILE *f = fopen(path, "r");
    if (!f) return TL_OK;
    char *line = NULL;
    size_t cap = 0;
    tl_status st = TL_OK;
    while (!st && getline(&line, &cap, f) > 0) {
        json_error_t jerr;
        json_t *entry = json_loads(line, 0, &jerr);
        st = entry ? replay_entry(s, entry, err) : tl_fail(err, TL_ERR_FORMAT, "%s", jerr.text);
        json_decref(entry);
        s->journal_entries++;
        if (st) tl_error_prefix(err, "%s entry %lld", path, (long long)s->journal_entries);
    }
    free(line);
    fclose(f);
    return st;
}

/* Appends entry (reference stolen) as one line and fsyncs; lock held. */
static tl_status journal_append(search_service *s, json_t *entry, tl_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/journal.jsonl", s->state_dir);
    char *text = json_dumps(entry, JSON_COMPACT);
    json_decref(entry);
    if (!text) return tl_fail(err, TL_ERR_NOMEM, "journal entry");
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    size_t len = strlen(text);
    text[len] = '\n'; /* replaces the terminator; write len + 1 bytes */
    int ok = fd >= 0 && write(fd, text, len + 1) == (ssize_t)(len + 1) && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    free(text);
    if (!ok) return tl_fail(err, TL_ERR_IO, "cannot append to %s", path);
    s->journal_entries++;
    return TL_OK;
}

/* ---- opening ---- */

/* Checks that the index directory was built for this model: same width, same checksum. */
static tl_status check_manifest(search_service *s, const char *model_dir, tl_error *err) {
    tl_status st = index_dir_verify(s->index_dir, &s->manifest, err);
    if (st) {
        tl_error_prefix(err, "index directory %s", s->index_dir);
        return st;
    }
    if (s->manifest.dim != s->dim)
        return tl_fail(err, TL_ERR_INVALID,
                       "index directory %s holds %d-wide embeddings but the model makes %d-wide "
                       "ones: rebuild it with `tailor index build`",
                       s->index_dir, s->manifest.dim, s->dim);
    char checksum[65];
    st = index_model_checksum(model_dir, checksum, err);
    if (!st && strcmp(checksum, s->manifest.model_checksum))
        st = tl_fail(err, TL_ERR_INVALID,
                     "index directory %s was built with model checksum %.12s… but %s has "
                     "%.12s…: rebuild it with `tailor index build`",
                     s->index_dir, s->manifest.model_checksum, model_dir, checksum);
    return st;
}

static tl_status open_contents(search_service *s, int threads, tl_error *err) {
    char path[4096];
    tl_status st = index_dir_path(path, sizeof path, s->index_dir, INDEX_CATALOG_FILE, err);
    if (!st) st = catalog_store_open(&s->catalog, path, CATALOG_READ_ONLY, err);
    if (!st) st = catalog_iterate(s->catalog, note_category, s->categories, err);
    for (int g = 0; g < SPACE_COUNT && !st; g++) {
        char name[64];
        snprintf(name, sizeof name, "%s.gallery", INDEX_GALLERY_NAMES[space_gallery[g]]);
        st = index_dir_path(path, sizeof path, s->index_dir, name, err);
        if (!st) st = vector_index_load(&s->galleries[g], path, 0, threads, err);
        if (st) tl_error_prefix(err, "gallery %s", name);
    }
    return st;
}

/* Creates the state directory and its uploads/ folder when missing. */
static tl_status make_state_dir(search_service *s, tl_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/uploads", s->state_dir);
    if ((mkdir(s->state_dir, 0755) && errno != EEXIST) || (mkdir(path, 0755) && errno != EEXIST))
        return tl_fail(err, TL_ERR_IO, "cannot create state directory %s: %s", path,
                       strerror(errno));
    return TL_OK;
}

tl_status search_service_open(search_service **out, const search_service_paths *paths,
                              tl_model *model, size_t max_pixels, int threads, tl_error *err) {
    *out = NULL;
    search_service *s = calloc(1, sizeof *s);
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "search service");
    pthread_rwlock_init(&s->lock, NULL);
    s->model = model;
    s->max_pixels = max_pixels;
    s->dim = tl_model_get_info(model)->projection_dim;
    s->overlay = json_object();
    s->categories = json_object();
    s->index_dir = realpath(paths->index_dir, NULL);
    s->state_dir = strdup(paths->state_dir);
    tl_status st = TL_OK;
    if (!s->overlay || !s->categories || !s->state_dir)
        st = tl_fail(err, TL_ERR_NOMEM, "search service");
    else if (!s->index_dir)
        st = tl_fail(err, TL_ERR_IO, "index directory %s not found", paths->index_dir);
    if (!st) st = check_manifest(s, paths->model_dir, err);
    if (!st) st = open_contents(s, threads, err);
    if (!st) st = make_state_dir(s, err);
    if (!st) st = replay_journal(s, err);
    if (st) {
        search_service_free(s);
        return st;
    }
    *out = s;
    return TL_OK;
}

void search_service_free(search_service *s) {
    if (!s) return;
    for (int g = 0; g < SPACE_COUNT; g++) vector_index_free(s->galleries[g]);
    catalog_store_close(s->catalog);
    json_decref(s->overlay);
    json_decref(s->categories);
    free(s->index_dir);
    free(s->state_dir);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* ---- queries ---- */

int64_t search_service_count(search_service *s) {
    return vector_index_count(s->galleries[SPACE_XMR]);
}

int search_service_dim(const search_service *s) {
    return s->dim;
}

static json_t *index_manifest_json(const index_manifest *m) {
    json_t *galleries = json_object();
    for (int g = 0; g < INDEX_N_GALLERIES; g++)
        json_object_set_new(galleries, INDEX_GALLERY_NAMES[g], json_integer(m->gallery_counts[g]));
    return json_pack("{s:i, s:s, s:s, s:s, s:i, s:s, s:I, s:o}", "format_version",
                     m->format_version, "created", m->created, "model_checksum", m->model_checksum,
                     "capabilities", m->capabilities, "dim", m->dim, "factory", m->factory,
                     "products", (json_int_t)m->n_products, "galleries", galleries);
}

json_t *search_service_manifest(search_service *s) {
    pthread_rwlock_rdlock(&s->lock);
    json_t *categories = json_object();
    const char *name;
    json_t *unused;
    json_object_foreach(s->categories, name, unused) {
        int64_t n = vector_index_category_count(s->galleries[SPACE_XMR], name);
        if (n) json_object_set_new(categories, name, json_integer(n));
    }
    json_t *m = json_pack("{s:I, s:i, s:o, s:I, s:s, s:s, s:s, s:o}", "items",
                          (json_int_t)search_service_count(s), "dim", s->dim, "categories",
                          categories, "journal_entries", (json_int_t)s->journal_entries,
                          "index_dir", s->index_dir, "state_dir", s->state_dir, "backend",
                          vector_index_factory(s->galleries[SPACE_XMR]), "manifest",
                          index_manifest_json(&s->manifest));
    pthread_rwlock_unlock(&s->lock);
    return m;
}

char *search_service_image_path(search_service *s, int64_t id) {
    catalog_product p;
    pthread_rwlock_rdlock(&s->lock);
    int found = item_lookup(s, id, &p);
    pthread_rwlock_unlock(&s->lock);
    char path[4096];
    if (found) resolve_path(s, p.image_path, path, sizeof path);
    catalog_product_clear(&p);
    return found ? strdup(path) : NULL;
}

tl_status search_service_embed_images(tl_model *model, const tl_image *images, int n, float *out,
                                      tl_error *err) {
    size_t per_space = (size_t)n * (size_t)tl_model_get_info(model)->projection_dim;
    tl_status st = TL_OK;
    for (int g = 0; g < SPACE_COUNT && !st; g++)
        st = space_embed_images(model, (embedding_space)g, images, n, out + g * per_space, err);
    return st;
}

tl_status search_service_embedding(search_service *s, embedding_space space, int64_t id, float *out,
                                   tl_error *err) {
    /* The gallery's own vector is the item's embedding in that space: no decode, no forward. */
    if (!vector_index_get(s->galleries[space], id, out, NULL)) return TL_OK;
    char *path = search_service_image_path(s, id);
    if (!path) return tl_fail(err, TL_ERR_NOT_FOUND, "no item %lld", (long long)id);
    tl_image image = {0};
    img_decode_opts opts = {.max_pixels = s->max_pixels, .apply_exif = 1};
    tl_status st = img_load_file(path, &opts, &image, err);
    if (!st) st = space_embed_images(s->model, space, &image, 1, out, err);
    if (st) tl_error_prefix(err, "item %lld image %s", (long long)id, path);
    img_free(&image);
    free(path);
    return st;
}

static int passes(const catalog_product *p, const search_filter *f) {
    if (f->exclude_id >= 0 && p->id == f->exclude_id) return 0;
    if (f->category && strcmp(p->category, f->category)) return 0;
    return !f->subcategory || !strcmp(p->subcategory, f->subcategory);
}

static json_t *result_json(const catalog_product *p, float score, const char *version) {
    char url[64];
    snprintf(url, sizeof url, "/images/%lld", (long long)p->id);
    return json_pack("{s:I, s:f, s:s, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)p->id, "score",
                     (double)score, "title", p->title, "category", p->category, "subcategory",
                     p->subcategory, "sku", p->sku, "image_url", url, "embedding_version", version);
}

/* Appends the hits of ids/scores[k] that pass the filter, skipping the first offset of them,
 * until results holds limit. Lock held. */
static void collect(search_service *s, const int64_t *ids, const float *scores, int k,
                    const search_filter *filter, int offset, int limit, json_t *results,
                    const char *version) {
    int passed = 0;
    for (int i = 0; i < k && ids[i] >= 0 && json_array_size(results) < (size_t)limit; i++) {
        catalog_product p;
        if (item_lookup(s, ids[i], &p) && passes(&p, filter) && passed++ >= offset)
            json_array_append_new(results, result_json(&p, scores[i], version));
        catalog_product_clear(&p);
    }
}

json_t *search_service_search(search_service *s, embedding_space space, const float *query,
                              const search_filter *filter, int limit, int offset,
                              const char *version) {
    vector_index *ix = s->galleries[space];
    int64_t total = filter->category ? vector_index_category_count(ix, filter->category)
                                     : vector_index_count(ix);
    /* Subcategory and exclusion filters act on the hits: widen k until enough pass. */
    int64_t k = (int64_t)offset + limit + (filter->exclude_id >= 0);
    if (filter->subcategory) k *= 4;
    json_t *results = json_array();
    pthread_rwlock_rdlock(&s->lock);
    for (;;) {
        int kk = (int)(k < total ? k : total);
        float *scores = malloc((size_t)(kk ? kk : 1) * sizeof *scores);
        int64_t *ids = malloc((size_t)(kk ? kk : 1) * sizeof *ids);
        tl_error err = {0};
        int ok = results && scores && ids &&
                 (kk == 0 ||
                  !vector_index_search(ix, query, 1, kk, filter->category, scores, ids, &err));
        if (ok) json_array_clear(results);
        if (ok && kk) collect(s, ids, scores, kk, filter, offset, limit, results, version);
        free(scores);
        free(ids);
        if (!ok) {
            json_decref(results);
            results = NULL;
        }
        if (!ok || json_array_size(results) >= (size_t)limit || kk >= total) break;
        k *= 4;
    }
    pthread_rwlock_unlock(&s->lock);
    return results;
}

/* ---- admin changes ---- */

/* Writes bytes to path through a temporary file, fsynced, renamed into place. */
static tl_status write_file_atomic(const char *path, const uint8_t *bytes, size_t len,
                                   tl_error *err) {
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && write(fd, bytes, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0) ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return TL_OK;
    unlink(tmp);
    return tl_fail(err, TL_ERR_IO, "cannot write %s", path);
}

tl_status search_service_upsert(search_service *s, const catalogue_item *item, const uint8_t *image,
                                size_t image_len, const float *const embeddings[SPACE_COUNT],
                                tl_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/uploads/%lld.img", s->state_dir, (long long)item->id);
    tl_status st = write_file_atomic(path, image, image_len, err);
    if (st) return st;
    json_t *stored = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)item->id, "sku",
                               item->sku, "title", item->title, "category", item->category,
                               "subcategory", item->subcategory, "image", path);
    if (!stored) return tl_fail(err, TL_ERR_INVALID, "item fields must be UTF-8 strings");
    json_t *entry = json_pack("{s:s, s:O}", "op", "upsert", "item", stored);
    for (int g = 0; entry && g < SPACE_COUNT; g++) {
        json_t *vector = json_array();
        for (int i = 0; i < s->dim; i++) json_array_append_new(vector, json_real(embeddings[g][i]));
        json_object_set_new(entry, journal_vector_keys[g], vector);
    }
    pthread_rwlock_wrlock(&s->lock);
    st = entry ? journal_append(s, entry, err) : tl_fail(err, TL_ERR_NOMEM, "journal entry");
    if (!st) st = apply_upsert(s, stored, embeddings, err);
    pthread_rwlock_unlock(&s->lock);
    json_decref(stored);
    return st;
}

tl_status search_service_remove(search_service *s, int64_t id, tl_error *err) {
    catalog_product p;
    pthread_rwlock_wrlock(&s->lock);
    int found = item_lookup(s, id, &p);
    catalog_product_clear(&p);
    tl_status st =
        !found
            ? tl_fail(err, TL_ERR_NOT_FOUND, "no item %lld", (long long)id)
            : journal_append(s, json_pack("{s:s, s:I}", "op", "remove", "id", (json_int_t)id), err);
    if (!st) st = apply_remove(s, id, err);
    pthread_rwlock_unlock(&s->lock);
    return st;
}
