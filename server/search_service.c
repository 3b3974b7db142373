/* search_service.h over an in-memory gallery: items in one array, embeddings in one flat
 * float buffer [n, dim] per space (row i belongs to items[i]), an id → row hash map, brute-force
 * inner product search, and an append-only journal of admin changes replayed at open. */
#include "search_service.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"

typedef struct owned_item {
    int64_t id;
    char *sku, *title, *category, *subcategory, *image_path;
} owned_item;

struct search_service {
    pthread_rwlock_t lock;
    char *dir;
    int dim;
    owned_item *items;
    float *vectors[SPACE_COUNT]; /* per space [count, dim]; row i belongs to items[i] */
    int64_t count, cap;
    int64_t *slots; /* open addressing: row + 1, 0 = empty, -1 = deleted */
    int64_t n_slots;
    int64_t journal_entries;
};

/* ---- id → row map ---- */

static uint64_t hash_id(int64_t id) {
    uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
    return x ^ (x >> 29);
}

static int64_t map_find_slot(const search_service *s, int64_t id) {
    uint64_t mask = (uint64_t)s->n_slots - 1;
    for (uint64_t i = hash_id(id) & mask, probes = 0; probes < (uint64_t)s->n_slots;
         i = (i + 1) & mask, probes++) {
        int64_t v = s->slots[i];
        if (v == 0) return -1;
        if (v > 0 && s->items[v - 1].id == id) return (int64_t)i;
    }
    return -1;
}

static int64_t map_row(const search_service *s, int64_t id) {
    int64_t slot = map_find_slot(s, id);
    return slot < 0 ? -1 : s->slots[slot] - 1;
}

static void map_insert(search_service *s, int64_t id, int64_t row) {
    uint64_t mask = (uint64_t)s->n_slots - 1;
    uint64_t i = hash_id(id) & mask;
    while (s->slots[i] > 0) i = (i + 1) & mask;
    s->slots[i] = row + 1;
}

/* Rebuilds the map at a size that keeps it at most half full. */
static tl_status map_rebuild(search_service *s, int64_t want_rows, tl_error *err) {
    int64_t n = 16;
    while (n < 2 * want_rows + 2) n *= 2;
    int64_t *slots = calloc((size_t)n, sizeof *slots);
    if (!slots) return tl_fail(err, TL_ERR_NOMEM, "id map of %lld slots", (long long)n);
    free(s->slots);
    s->slots = slots;
    s->n_slots = n;
    for (int64_t r = 0; r < s->count; r++) map_insert(s, s->items[r].id, r);
    return TL_OK;
}

/* ---- rows ---- */

static void item_release(owned_item *it) {
    free(it->sku);
    free(it->title);
    free(it->category);
    free(it->subcategory);
    free(it->image_path);
}

static tl_status rows_reserve(search_service *s, int64_t need, tl_error *err) {
    if (need <= s->cap && 2 * need + 2 <= s->n_slots) return TL_OK;
    int64_t cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    owned_item *items = realloc(s->items, (size_t)cap * sizeof *items);
    if (!items) return tl_fail(err, TL_ERR_NOMEM, "catalogue of %lld items", (long long)cap);
    s->items = items;
    for (int g = 0; g < SPACE_COUNT; g++) {
        float *v = realloc(s->vectors[g], (size_t)cap * (size_t)s->dim * sizeof *v);
        if (!v) return tl_fail(err, TL_ERR_NOMEM, "catalogue of %lld items", (long long)cap);
        s->vectors[g] = v;
    }
    s->cap = cap;
    return map_rebuild(s, cap, err);
}

static void normalise(float *v, int dim) {
    double sum = 0;
    for (int i = 0; i < dim; i++) sum += (double)v[i] * v[i];
    float inv = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
    for (int i = 0; i < dim; i++) v[i] *= inv;
}

static char *dup_or_empty(const char *text) {
    return strdup(text ? text : "");
}

/* Inserts or replaces one row (strings copied, embeddings[space] normalised); lock held. */
static tl_status rows_put(search_service *s, const catalogue_item *item,
                          const float *const embeddings[SPACE_COUNT], tl_error *err) {
    owned_item copy = {item->id,
                       dup_or_empty(item->sku),
                       dup_or_empty(item->title),
                       dup_or_empty(item->category),
                       dup_or_empty(item->subcategory),
                       dup_or_empty(item->image_path)};
    if (!copy.sku || !copy.title || !copy.category || !copy.subcategory || !copy.image_path) {
        item_release(&copy);
        return tl_fail(err, TL_ERR_NOMEM, "item %lld", (long long)item->id);
    }
    int64_t row = map_row(s, item->id);
    if (row < 0) {
        tl_status st = rows_reserve(s, s->count + 1, err);
        if (st) {
            item_release(&copy);
            return st;
        }
        row = s->count++;
        map_insert(s, item->id, row);
    } else
        item_release(&s->items[row]);
    s->items[row] = copy;
    for (int g = 0; g < SPACE_COUNT; g++) {
        float *v = s->vectors[g] + row * s->dim;
        memcpy(v, embeddings[g], (size_t)s->dim * sizeof *v);
        normalise(v, s->dim);
    }
    return TL_OK;
}

/* Removes one row by moving the last row into its place; lock held. */
static int rows_remove(search_service *s, int64_t id) {
    int64_t slot = map_find_slot(s, id);
    if (slot < 0) return 0;
    int64_t row = s->slots[slot] - 1, last = s->count - 1;
    s->slots[slot] = -1; /* tombstone */
    item_release(&s->items[row]);
    if (row != last) {
        s->slots[map_find_slot(s, s->items[last].id)] = row + 1;
        s->items[row] = s->items[last];
        for (int g = 0; g < SPACE_COUNT; g++)
            memcpy(s->vectors[g] + row * s->dim, s->vectors[g] + last * s->dim,
                   (size_t)s->dim * sizeof(float));
    }
    s->count--;
    return 1;
}

/* ---- loading ---- */

/* Reads one catalogue object into item (strings borrowed from obj). */
static tl_status item_from_json(json_t *obj, catalogue_item *item, tl_error *err) {
    json_t *id = json_object_get(obj, "id");
    if (!json_is_integer(id) || json_integer_value(id) < 0)
        return tl_fail(err, TL_ERR_FORMAT, "\"id\" must be a non-negative integer");
    *item = (catalogue_item){.id = json_integer_value(id)};
    const char *const names[] = {"sku", "title", "category", "subcategory", "image"};
    const char **fields[] = {&item->sku, &item->title, &item->category, &item->subcategory,
                             &item->image_path};
    for (int i = 0; i < 5; i++) {
        json_t *v = json_object_get(obj, names[i]);
        if (v && !json_is_string(v))
            return tl_fail(err, TL_ERR_FORMAT, "\"%s\" must be a string", names[i]);
        *fields[i] = v ? json_string_value(v) : "";
    }
    if (!*item->image_path) return tl_fail(err, TL_ERR_FORMAT, "\"image\" is missing");
    return TL_OK;
}

/* Writes the absolute form of an item's image path (relative ones are under the directory). */
static void resolve_path(const search_service *s, const char *image_path, char *out, size_t size) {
    if (image_path[0] == '/')
        snprintf(out, size, "%s", image_path);
    else
        snprintf(out, size, "%s/%s", s->dir, image_path);
}

tl_status search_service_embed_images(tl_model *model, const tl_image *images, int n, float *out,
                                      tl_error *err) {
    size_t per_space = (size_t)n * (size_t)tl_model_get_info(model)->projection_dim;
    tl_status st = TL_OK;
    for (int g = 0; g < SPACE_COUNT && !st; g++)
        st = space_embed_images(model, (embedding_space)g, images, n, out + g * per_space, err);
    return st;
}

/* Adds items[0..n) with their images embedded in one model call per space. */
static tl_status embed_and_add(search_service *s, tl_model *model, const catalogue_item *items,
                               int n, size_t max_pixels, tl_error *err) {
    tl_image images[16] = {0};
    size_t per_space = (size_t)n * (size_t)s->dim;
    float *emb = malloc(SPACE_COUNT * per_space * sizeof *emb);
    tl_status st = emb ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "embeddings");
    img_decode_opts opts = {.max_pixels = max_pixels, .apply_exif = 1};
    for (int i = 0; i < n && !st; i++) {
        char path[4096];
        resolve_path(s, items[i].image_path, path, sizeof path);
        st = img_load_file(path, &opts, &images[i], err);
        if (st) tl_error_prefix(err, "item %lld image %s", (long long)items[i].id, path);
    }
    if (!st) st = search_service_embed_images(model, images, n, emb, err);
    for (int i = 0; i < n && !st; i++) {
        char path[4096];
        resolve_path(s, items[i].image_path, path, sizeof path);
        catalogue_item absolute = items[i];
        absolute.image_path = path;
        const float *rows[SPACE_COUNT];
        for (int g = 0; g < SPACE_COUNT; g++)
            rows[g] = emb + g * per_space + (size_t)i * (size_t)s->dim;
        st = rows_put(s, &absolute, rows, err);
    }
    for (int i = 0; i < n; i++) img_free(&images[i]);
    free(emb);
    return st;
}

/* Reads catalog.jsonl, embedding images 16 at a time. */
static tl_status load_catalogue(search_service *s, tl_model *model, size_t max_pixels,
                                tl_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/catalog.jsonl", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) return tl_fail(err, TL_ERR_IO, "cannot open %s", path);
    json_t *pending[16];
    catalogue_item items[16];
    int n = 0, line_no = 0;
    tl_status st = TL_OK;
    char *line = NULL;
    size_t line_cap = 0;
    while (!st && getline(&line, &line_cap, f) > 0) {
        line_no++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        json_error_t jerr;
        pending[n] = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
        if (!pending[n])
            st = tl_fail(err, TL_ERR_FORMAT, "%s", jerr.text);
        else if (!(st = item_from_json(pending[n], &items[n], err)) && ++n == 16) {
            st = embed_and_add(s, model, items, n, max_pixels, err);
            while (n) json_decref(pending[--n]);
        } else if (st)
            json_decref(pending[n]);
        if (st) tl_error_prefix(err, "%s line %d", path, line_no);
    }
    if (!st && n) st = embed_and_add(s, model, items, n, max_pixels, err);
    while (n) json_decref(pending[--n]);
    free(line);
    fclose(f);
    return st;
}

static const char *const journal_vector_keys[SPACE_COUNT] = {"embedding_xmr", "embedding_tgir"};

static tl_status replay_entry(search_service *s, json_t *entry, tl_error *err) {
    const char *op = json_string_value(json_object_get(entry, "op"));
    if (op && !strcmp(op, "remove")) {
        rows_remove(s, json_integer_value(json_object_get(entry, "id")));
        return TL_OK;
    }
    int widths_ok = 1;
    for (int g = 0; g < SPACE_COUNT; g++)
        widths_ok &=
            json_array_size(json_object_get(entry, journal_vector_keys[g])) == (size_t)s->dim;
    catalogue_item item;
    if (!op || strcmp(op, "upsert") || !widths_ok)
        return tl_fail(err, TL_ERR_FORMAT, "not an upsert or remove entry of width %d", s->dim);
    tl_status st = item_from_json(json_object_get(entry, "item"), &item, err);
    float *v = st ? NULL : malloc(SPACE_COUNT * (size_t)s->dim * sizeof *v);
    if (!st && !v) st = tl_fail(err, TL_ERR_NOMEM, "embedding");
    const float *rows[SPACE_COUNT];
    for (int g = 0; v && g < SPACE_COUNT; g++) {
        json_t *vector = json_object_get(entry, journal_vector_keys[g]);
        for (int i = 0; i < s->dim; i++)
            v[g * s->dim + i] = (float)json_number_value(json_array_get(vector, (size_t)i));
        rows[g] = v + g * s->dim;
    }
    char path[4096];
    if (!st) {
        resolve_path(s, item.image_path, path, sizeof path);
        item.image_path = path;
        st = rows_put(s, &item, rows, err);
    }
    free(v);
    return st;
}

/* Replays journal.jsonl (absent = nothing to replay). */
static tl_status replay_journal(search_service *s, tl_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/journal.jsonl", s->dir);
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

tl_status search_service_open(search_service **out, const char *index_dir, tl_model *model,
                              size_t max_pixels, tl_error *err) {
    *out = NULL;
    search_service *s = calloc(1, sizeof *s);
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "search service");
    pthread_rwlock_init(&s->lock, NULL);
    s->dim = tl_model_get_info(model)->projection_dim;
    s->dir = realpath(index_dir, NULL);
    tl_status st = s->dir ? rows_reserve(s, 64, err)
                          : tl_fail(err, TL_ERR_IO, "index directory %s not found", index_dir);
    if (!st) st = load_catalogue(s, model, max_pixels, err);
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
    for (int64_t r = 0; r < s->count; r++) item_release(&s->items[r]);
    free(s->items);
    for (int g = 0; g < SPACE_COUNT; g++) free(s->vectors[g]);
    free(s->slots);
    free(s->dir);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

/* ---- queries ---- */

int64_t search_service_count(search_service *s) {
    pthread_rwlock_rdlock(&s->lock);
    int64_t n = s->count;
    pthread_rwlock_unlock(&s->lock);
    return n;
}

int search_service_dim(const search_service *s) {
    return s->dim;
}

json_t *search_service_manifest(search_service *s) {
    pthread_rwlock_rdlock(&s->lock);
    json_t *categories = json_object();
    for (int64_t r = 0; r < s->count; r++) {
        const char *c = s->items[r].category;
        json_t *n = json_object_get(categories, c);
        json_object_set_new(categories, c, json_integer(n ? json_integer_value(n) + 1 : 1));
    }
    json_t *m =
        json_pack("{s:I, s:i, s:o, s:I, s:s, s:s}", "items", (json_int_t)s->count, "dim", s->dim,
                  "categories", categories, "journal_entries", (json_int_t)s->journal_entries,
                  "index_dir", s->dir, "backend", "in-memory brute force");
    pthread_rwlock_unlock(&s->lock);
    return m;
}

tl_status search_service_embedding(search_service *s, embedding_space space, int64_t id, float *out,
                                   tl_error *err) {
    pthread_rwlock_rdlock(&s->lock);
    int64_t row = map_row(s, id);
    if (row >= 0) memcpy(out, s->vectors[space] + row * s->dim, (size_t)s->dim * sizeof *out);
    pthread_rwlock_unlock(&s->lock);
    return row >= 0 ? TL_OK : tl_fail(err, TL_ERR_NOT_FOUND, "no item %lld", (long long)id);
}

char *search_service_image_path(search_service *s, int64_t id) {
    pthread_rwlock_rdlock(&s->lock);
    int64_t row = map_row(s, id);
    char *path = row >= 0 ? strdup(s->items[row].image_path) : NULL;
    pthread_rwlock_unlock(&s->lock);
    return path;
}

typedef struct scored_row {
    float score;
    int64_t row;
} scored_row;

static int by_score_desc(const void *a, const void *b) {
    const scored_row *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static int row_passes(const owned_item *it, const search_filter *f) {
    if (f->exclude_id >= 0 && it->id == f->exclude_id) return 0;
    if (f->category && strcmp(it->category, f->category)) return 0;
    return !f->subcategory || !strcmp(it->subcategory, f->subcategory);
}

static json_t *result_json(const owned_item *it, float score, const char *version) {
    char url[64];
    snprintf(url, sizeof url, "/images/%lld", (long long)it->id);
    return json_pack("{s:I, s:f, s:s, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)it->id, "score",
                     (double)score, "title", it->title, "category", it->category, "subcategory",
                     it->subcategory, "sku", it->sku, "image_url", url, "embedding_version",
                     version);
}

json_t *search_service_search(search_service *s, embedding_space space, const float *query,
                              const search_filter *filter, int limit, int offset,
                              const char *version) {
    json_t *results = json_array();
    float *q = malloc((size_t)s->dim * sizeof *q);
    pthread_rwlock_rdlock(&s->lock);
    scored_row *scored = malloc((size_t)(s->count ? s->count : 1) * sizeof *scored);
    if (!results || !q || !scored) {
        json_decref(results);
        results = NULL;
    }
    int64_t n = 0;
    if (results) {
        memcpy(q, query, (size_t)s->dim * sizeof *q);
        normalise(q, s->dim);
        for (int64_t r = 0; r < s->count; r++) {
            if (!row_passes(&s->items[r], filter)) continue;
            const float *v = s->vectors[space] + r * s->dim;
            float dot = 0;
            for (int i = 0; i < s->dim; i++) dot += q[i] * v[i];
            scored[n++] = (scored_row){dot, r};
        }
        qsort(scored, (size_t)n, sizeof *scored, by_score_desc);
    }
    for (int64_t i = offset; results && i < n && i < (int64_t)offset + limit; i++)
        json_array_append_new(results,
                              result_json(&s->items[scored[i].row], scored[i].score, version));
    pthread_rwlock_unlock(&s->lock);
    free(scored);
    free(q);
    return results;
}

/* ---- admin changes ---- */

static tl_status journal_append(search_service *s, json_t *entry, tl_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/journal.jsonl", s->dir);
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
    char relative[64], path[4200];
    snprintf(relative, sizeof relative, "uploads/%lld.img", (long long)item->id);
    snprintf(path, sizeof path, "%s/uploads", s->dir);
    if (mkdir(path, 0755) && errno != EEXIST)
        return tl_fail(err, TL_ERR_IO, "cannot create %s", path);
    resolve_path(s, relative, path, sizeof path);
    tl_status st = write_file_atomic(path, image, image_len, err);
    if (st) return st;
    json_t *entry =
        json_pack("{s:s, s:{s:I, s:s, s:s, s:s, s:s, s:s}}", "op", "upsert", "item", "id",
                  (json_int_t)item->id, "sku", item->sku, "title", item->title, "category",
                  item->category, "subcategory", item->subcategory, "image", relative);
    if (!entry) return tl_fail(err, TL_ERR_INVALID, "item fields must be UTF-8 strings");
    for (int g = 0; g < SPACE_COUNT; g++) {
        json_t *vector = json_array();
        for (int i = 0; i < s->dim; i++) json_array_append_new(vector, json_real(embeddings[g][i]));
        json_object_set_new(entry, journal_vector_keys[g], vector);
    }
    catalogue_item stored = *item;
    stored.image_path = path;
    pthread_rwlock_wrlock(&s->lock);
    st = journal_append(s, entry, err);
    if (!st) st = rows_put(s, &stored, embeddings, err);
    pthread_rwlock_unlock(&s->lock);
    return st;
}

tl_status search_service_remove(search_service *s, int64_t id, tl_error *err) {
    pthread_rwlock_wrlock(&s->lock);
    tl_status st =
        map_row(s, id) < 0
            ? tl_fail(err, TL_ERR_NOT_FOUND, "no item %lld", (long long)id)
            : journal_append(s, json_pack("{s:s, s:I}", "op", "remove", "id", (json_int_t)id), err);
    if (!st) rows_remove(s, id);
    pthread_rwlock_unlock(&s->lock);
    return st;
}
