/* index_build: parse, embed in batches (images decoded on a worker thread while the embedder
 * runs), append each batch to a checkpoint, then write galleries, catalogue and manifest into
 * the work directory and publish it. Not for: choosing the model or reporting to a terminal. */
#include "index_build.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog_store.h"
#include "index_dir.h"
#include "sha256.h"
#include "vector_index.h"

#define CHECKPOINT_FILE  "checkpoint.bin"
#define CHECKPOINT_MAGIC "TLCKPT02"

typedef struct product_list {
    catalog_product *items;
    int *lines;
    int64_t n, capacity;
} product_list;

/* One checkpoint record per product, in catalogue order: id, has_image, then its vectors
 * (N_VECTORS x dim floats: XMR image, TGIR image, text). */
typedef struct checkpoint_header {
    char magic[8];
    uint32_t dim;
    uint8_t catalog_sha256[32];
} checkpoint_header;

/* The vectors kept per product, one per gallery. */
enum { VEC_XMR_IMAGE, VEC_TGIR_IMAGE, VEC_TEXT, N_VECTORS };

typedef struct builder {
    const index_build_opts *o;
    product_list products;
    char *work;
    int dim;
    float *emb[N_VECTORS]; /* [n, dim] each */
    uint8_t *has_image;    /* [n] */
    int64_t done;
    FILE *checkpoint;
    int lock_fd; /* "<out_dir>.lock", flocked for the whole build */
} builder;

char *index_build_work_dir(const char *out_dir) {
    char *path;
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--;
    return asprintf(&path, "%.*s.building", (int)len, out_dir) < 0 ? NULL : path;
}

static char *dup_or_empty(const char *s) {
    return strdup(s ? s : "");
}

static tl_status collect_product(const catalog_product *p, int line, void *ctx, tl_error *err) {
    product_list *list = &((builder *)ctx)->products;
    if (list->n == list->capacity) {
        int64_t capacity = list->capacity ? 2 * list->capacity : 256;
        catalog_product *items = realloc(list->items, capacity * sizeof *items);
        if (items) list->items = items;
        int *lines = realloc(list->lines, capacity * sizeof *lines);
        if (lines) list->lines = lines;
        if (!items || !lines) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
        list->capacity = capacity;
    }
    catalog_product c = {.id = p->id,
                         .sku = dup_or_empty(p->sku),
                         .title = dup_or_empty(p->title),
                         .description = dup_or_empty(p->description),
                         .category = dup_or_empty(p->category),
                         .subcategory = dup_or_empty(p->subcategory),
                         .image_path = dup_or_empty(p->image_path),
                         .attributes = dup_or_empty(p->attributes)};
    list->lines[list->n] = line;
    list->items[list->n++] = c;
    if (!c.sku || !c.title || !c.description || !c.category || !c.subcategory || !c.image_path ||
        !c.attributes)
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    return TL_OK;
}

static void builder_free(builder *b) {
    for (int64_t i = 0; i < b->products.n; i++) catalog_product_clear(&b->products.items[i]);
    free(b->products.items);
    free(b->products.lines);
    free(b->work);
    for (int v = 0; v < N_VECTORS; v++) free(b->emb[v]);
    free(b->has_image);
    if (b->checkpoint) fclose(b->checkpoint);
    if (b->lock_fd >= 0) close(b->lock_fd); /* releases the flock */
}

static void forward_issue(int line, const char *message, void *ctx) {
    builder *b = ctx;
    if (b->o->on_issue) b->o->on_issue(line, message, b->o->ctx);
}

static void issue(builder *b, int line, const char *fmt, const char *detail) {
    char message[600];
    snprintf(message, sizeof message, fmt, detail);
    if (b->o->on_issue) b->o->on_issue(line, message, b->o->ctx);
}

/* --- checkpoint --- */

static size_t record_size(int dim) {
    return 8 + 4 + N_VECTORS * (size_t)dim * sizeof(float);
}

/* Reads the finished records of an existing checkpoint into b (checking ids against the
 * catalogue order), truncating a partly written last record. */
static tl_status checkpoint_read(builder *b, const checkpoint_header *want, tl_error *err) {
    checkpoint_header have;
    if (fread(&have, sizeof have, 1, b->checkpoint) != 1 || memcmp(&have, want, sizeof have))
        return tl_fail(err, TL_ERR_INVALID,
                       "the checkpoint in %s is for another catalogue or model; build without "
                       "--resume",
                       b->work);
    uint8_t *rec = malloc(record_size(b->dim));
    if (!rec) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    while (b->done < b->products.n && fread(rec, record_size(b->dim), 1, b->checkpoint) == 1) {
        int64_t id;
        int32_t has_image;
        memcpy(&id, rec, 8);
        memcpy(&has_image, rec + 8, 4);
        if (id != b->products.items[b->done].id) break;
        b->has_image[b->done] = (uint8_t)has_image;
        for (int v = 0; v < N_VECTORS; v++)
            memcpy(b->emb[v] + b->done * b->dim, rec + 12 + v * b->dim * sizeof(float),
                   b->dim * sizeof(float));
        b->done++;
    }
    free(rec);
    off_t keep = (off_t)(sizeof have + b->done * record_size(b->dim));
    if (fflush(b->checkpoint) || ftruncate(fileno(b->checkpoint), keep) ||
        fseeko(b->checkpoint, keep, SEEK_SET))
        return tl_fail(err, TL_ERR_IO, "cannot truncate the checkpoint: %s", strerror(errno));
    return TL_OK;
}

static tl_status checkpoint_open(builder *b, tl_error *err) {
    checkpoint_header want = {.magic = CHECKPOINT_MAGIC, .dim = (uint32_t)b->dim};
    char path[4096], hex[65];
    sha256_ctx c;
    sha256_init(&c);
    tl_status st = sha256_file(b->o->catalog, hex, &c, err);
    if (st || (st = index_dir_path(path, sizeof path, b->work, CHECKPOINT_FILE, err))) return st;
    const char *model = b->o->model_checksum ? b->o->model_checksum : "";
    sha256_update(&c, model, strlen(model)); /* a checkpoint is for one catalogue and model */
    sha256_final(&c, want.catalog_sha256);
    /* A checkpoint without a whole header (killed while creating it) holds nothing to keep. */
    struct stat sb;
    int exists = b->o->resume && stat(path, &sb) == 0 && sb.st_size >= (off_t)sizeof want;
    if (!(b->checkpoint = fopen(path, exists ? "r+b" : "w+b")))
        return tl_fail(err, TL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (exists) return checkpoint_read(b, &want, err);
    if (fwrite(&want, sizeof want, 1, b->checkpoint) != 1 || fflush(b->checkpoint))
        return tl_fail(err, TL_ERR_IO, "cannot write %s", path);
    return TL_OK;
}

/* Appends products [from, to) and makes them durable. */
static tl_status checkpoint_append(builder *b, int64_t from, int64_t to, tl_error *err) {
    for (int64_t i = from; i < to; i++) {
        int32_t has_image = b->has_image[i];
        int ok = fwrite(&b->products.items[i].id, 8, 1, b->checkpoint) == 1 &&
                 fwrite(&has_image, 4, 1, b->checkpoint) == 1;
        for (int v = 0; v < N_VECTORS && ok; v++)
            ok = fwrite(b->emb[v] + i * b->dim, sizeof(float), b->dim, b->checkpoint) ==
                 (size_t)b->dim;
        if (!ok) return tl_fail(err, TL_ERR_IO, "cannot append to the checkpoint");
    }
    if (fflush(b->checkpoint) || fdatasync(fileno(b->checkpoint)))
        return tl_fail(err, TL_ERR_IO, "cannot sync the checkpoint: %s", strerror(errno));
    return TL_OK;
}

/* --- embedding --- */

typedef struct decode_job {
    const product_list *products;
    int64_t from, n;
    tl_image *images; /* [n]; rgb NULL where decoding failed */
    tl_error *errors; /* [n] */
} decode_job;

static void *decode_batch(void *arg) {
    decode_job *job = arg;
    for (int64_t i = 0; i < job->n; i++)
        if (img_load_file(job->products->items[job->from + i].image_path, NULL, &job->images[i],
                          &job->errors[i]))
            job->images[i] = (tl_image){0};
    return NULL;
}

static void decode_job_clear(decode_job *job) {
    for (int64_t i = 0; i < job->n; i++) img_free(&job->images[i]);
}

/* Copies the compacted rows of out into emb for the products of job that have an image, and
 * zeroes the others. */
static void scatter_rows(builder *b, const decode_job *job, const float *out, float *emb) {
    for (int64_t i = 0, k = 0; i < job->n; i++) {
        float *dst = emb + (job->from + i) * b->dim;
        if (b->has_image[job->from + i])
            memcpy(dst, out + (k++) * b->dim, b->dim * sizeof(float));
        else
            memset(dst, 0, b->dim * sizeof(float));
    }
}

/* Embeds the decoded images of job in each image space (compacted: failed decodes are reported
 * and skipped). */
static tl_status embed_images(builder *b, decode_job *job, tl_image *scratch, float *out,
                              tl_error *err) {
    int m = 0;
    for (int64_t i = 0; i < job->n; i++) {
        int64_t p = job->from + i;
        b->has_image[p] = job->images[i].rgb != NULL;
        if (b->has_image[p])
            scratch[m++] = job->images[i];
        else
            issue(b, b->products.lines[p], "image not decodable: %s", job->errors[i].message);
    }
    if (b->o->strict && m < job->n)
        return tl_fail(err, TL_ERR_FORMAT, "undecodable image (strict mode)");
    const index_embedder *e = b->o->embedder;
    static const int vec_of_space[SPACE_COUNT] = {VEC_XMR_IMAGE, VEC_TGIR_IMAGE};
    tl_status st = TL_OK;
    for (int space = 0; space < SPACE_COUNT && !st; space++) {
        float *emb = b->emb[vec_of_space[space]];
        if (space > 0 && !e->distinct_spaces) {
            for (int64_t i = 0; i < job->n; i++)
                memcpy(emb + (job->from + i) * b->dim,
                       b->emb[VEC_XMR_IMAGE] + (job->from + i) * b->dim, b->dim * sizeof(float));
            continue;
        }
        if (m) st = e->embed_images(e->ctx, (embedding_space)space, scratch, m, out, err);
        if (!st) scatter_rows(b, job, out, emb);
    }
    return st;
}

static tl_status embed_texts(builder *b, int64_t from, int n, tl_error *err) {
    char **texts = calloc(n > 0 ? (size_t)n : 1, sizeof *texts);
    tl_status st = texts ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) {
        const catalog_product *p = &b->products.items[from + i];
        const char *sep = *p->title && *p->description ? ". " : "";
        if (asprintf(&texts[i], "%s%s%s", p->title, sep, p->description) < 0)
            st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    if (!st)
        st = b->o->embedder->embed_texts(b->o->embedder->ctx, (const char *const *)texts, n,
                                         b->emb[VEC_TEXT] + from * b->dim, err);
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    return st;
}

typedef struct batch_buffers {
    decode_job jobs[2];
    tl_image *scratch;
    float *out;
} batch_buffers;

static tl_status batch_buffers_init(batch_buffers *bb, int batch, int dim, tl_error *err) {
    *bb = (batch_buffers){0};
    for (int j = 0; j < 2; j++) {
        bb->jobs[j].images = calloc(batch, sizeof(tl_image));
        bb->jobs[j].errors = calloc(batch, sizeof(tl_error));
    }
    bb->scratch = calloc(batch, sizeof(tl_image));
    bb->out = malloc((size_t)batch * dim * sizeof(float));
    if (!bb->jobs[0].images || !bb->jobs[1].images || !bb->jobs[0].errors || !bb->jobs[1].errors ||
        !bb->scratch || !bb->out)
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    return TL_OK;
}

static void batch_buffers_free(batch_buffers *bb) {
    for (int j = 0; j < 2; j++) {
        free(bb->jobs[j].images);
        free(bb->jobs[j].errors);
    }
    free(bb->scratch);
    free(bb->out);
}

/* Embeds products [done, n) batch by batch; the next batch decodes while this one embeds. */
static tl_status embed_all(builder *b, tl_error *err) {
    int batch = b->o->batch > 0 ? b->o->batch : 16;
    batch_buffers bb;
    tl_status st = batch_buffers_init(&bb, batch, b->dim, err);
    pthread_t worker;
    int cur = 0, running = 0;
    if (!st && b->done < b->products.n) {
        bb.jobs[0] = (decode_job){&b->products, b->done, 0, bb.jobs[0].images, bb.jobs[0].errors};
        bb.jobs[0].n = b->products.n - b->done < batch ? b->products.n - b->done : batch;
        decode_batch(&bb.jobs[0]);
    }
    while (!st && b->done < b->products.n) {
        decode_job *job = &bb.jobs[cur], *next = &bb.jobs[1 - cur];
        int64_t next_from = job->from + job->n;
        next->from = next_from;
        next->n = b->products.n - next_from < batch ? b->products.n - next_from : batch;
        next->products = &b->products;
        running = next->n > 0 && !pthread_create(&worker, NULL, decode_batch, next);
        if (next->n > 0 && !running) decode_batch(next);
        st = embed_images(b, job, bb.scratch, bb.out, err);
        if (!st) st = embed_texts(b, job->from, (int)job->n, err);
        if (!st) st = checkpoint_append(b, job->from, job->from + job->n, err);
        if (running) pthread_join(worker, NULL);
        running = 0;
        decode_job_clear(job);
        if (!st) b->done = next_from;
        if (!st && b->o->on_progress) b->o->on_progress(b->done, b->products.n, b->o->ctx);
        cur = 1 - cur;
    }
    decode_job_clear(&bb.jobs[cur]);
    batch_buffers_free(&bb);
    return st;
}

/* --- outputs --- */

/* Adds the products selected by mask (NULL = all) to ix, one batch per category. */
static tl_status add_by_category(builder *b, vector_index *ix, const float *emb,
                                 const uint8_t *mask, tl_error *err) {
    int64_t n = b->products.n, m;
    uint8_t *added = calloc(n ? n : 1, 1);
    int64_t *ids = malloc((n ? n : 1) * sizeof *ids);
    float *rows = malloc((size_t)(n ? n : 1) * b->dim * sizeof *rows);
    tl_status st = added && ids && rows ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n && !st; i++) {
        if (added[i] || (mask && !mask[i])) continue;
        const char *category = b->products.items[i].category;
        m = 0;
        for (int64_t j = i; j < n; j++) {
            if (added[j] || (mask && !mask[j]) || strcmp(b->products.items[j].category, category))
                continue;
            added[j] = 1;
            ids[m] = b->products.items[j].id;
            memcpy(rows + m++ * b->dim, emb + j * b->dim, b->dim * sizeof *rows);
        }
        st = vector_index_add(ix, category, ids, rows, m, err);
    }
    free(added);
    free(ids);
    free(rows);
    return st;
}

/* The rows of emb selected by mask (NULL = all), for training; caller frees. */
static float *selected_rows(const builder *b, const float *emb, const uint8_t *mask, int64_t *n) {
    float *rows = malloc((size_t)(b->products.n ? b->products.n : 1) * b->dim * sizeof *rows);
    *n = 0;
    for (int64_t i = 0; rows && i < b->products.n; i++)
        if (!mask || mask[i])
            memcpy(rows + (*n)++ * b->dim, emb + i * b->dim, b->dim * sizeof *rows);
    return rows;
}

/* An empty gallery index with the build's factory and search parameters. */
static tl_status create_gallery_index(const builder *b, vector_index **ix, tl_error *err) {
    tl_status st = vector_index_create(ix, b->dim, b->o->factory, b->o->n_threads, err);
    if (!st && b->o->nprobe > 0 && (st = vector_index_set_param(*ix, "nprobe", b->o->nprobe, err))) {
        vector_index_free(*ix);
        *ix = NULL;
    }
    return st;
}

static tl_status write_gallery(builder *b, index_gallery g, const float *emb, const uint8_t *mask,
                               int64_t *count, tl_error *err) {
    vector_index *ix;
    char name[64], path[4096];
    tl_status st = create_gallery_index(b, &ix, err);
    if (st) return st;
    if (vector_index_needs_training(ix)) {
        int64_t n;
        float *rows = selected_rows(b, emb, mask, &n);
        st = rows ? vector_index_train(ix, rows, n, err)
                  : tl_fail(err, TL_ERR_NOMEM, "out of memory");
        free(rows);
    }
    if (!st) st = add_by_category(b, ix, emb, mask, err);
    snprintf(name, sizeof name, "%s.gallery", INDEX_GALLERY_NAMES[g]);
    if (!st) st = index_dir_path(path, sizeof path, b->work, name, err);
    if (!st) st = vector_index_save(ix, path, err);
    *count = vector_index_count(ix);
    vector_index_free(ix);
    return st ? tl_error_prefix(err, "gallery %s", INDEX_GALLERY_NAMES[g]) : TL_OK;
}

/* Removes the catalogue and its SQLite companions (a killed build's WAL or hot journal would
 * otherwise be replayed into the new database, changing it after the manifest hashed it). With
 * check set, a companion that is still there is an error instead. */
static tl_status remove_catalog_files(builder *b, int check, tl_error *err) {
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[4096];
    tl_status st = TL_OK;
    for (size_t i = check ? 1 : 0; i < sizeof suffixes / sizeof *suffixes && !st; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", INDEX_CATALOG_FILE, suffixes[i]);
        if ((st = index_dir_path(path, sizeof path, b->work, name, err))) break;
        if (check && access(path, F_OK) == 0)
            st = tl_fail(err, TL_ERR_IO, "%s is left after sealing the catalogue", path);
        else if (!check && unlink(path) && errno != ENOENT)
            st = tl_fail(err, TL_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    return st;
}

static tl_status write_catalog(builder *b, tl_error *err) {
    char path[4096];
    catalog_store *s;
    tl_status st = index_dir_path(path, sizeof path, b->work, INDEX_CATALOG_FILE, err);
    if (!st) st = remove_catalog_files(b, 0, err);
    if (st || (st = catalog_store_open(&s, path, 0, err))) return st;
    st = catalog_begin(s, err);
    for (int64_t i = 0; i < b->products.n && !st; i++) {
        b->products.items[i].embedding_version = 1;
        st = catalog_upsert(s, &b->products.items[i], err);
    }
    if (!st) st = catalog_commit(s, err);
    if (!st) st = catalog_store_seal(s, err);
    catalog_store_close(s);
    return st ? st : remove_catalog_files(b, 1, err);
}

static tl_status write_outputs(builder *b, tl_error *err) {
    index_manifest m = {.dim = b->dim, .n_products = b->products.n};
    snprintf(m.factory, sizeof m.factory, "%s",
             b->o->factory ? b->o->factory : VECTOR_INDEX_DEFAULT_FACTORY);
    snprintf(m.model_checksum, sizeof m.model_checksum, "%s",
             b->o->model_checksum ? b->o->model_checksum : "");
    snprintf(m.capabilities, sizeof m.capabilities, "%s",
             b->o->capabilities ? b->o->capabilities : "");
    tl_status st = write_gallery(b, GALLERY_XMR_IMAGE, b->emb[VEC_XMR_IMAGE], b->has_image,
                                 &m.gallery_counts[GALLERY_XMR_IMAGE], err);
    if (!st)
        st = write_gallery(b, GALLERY_TGIR_TARGET, b->emb[VEC_TGIR_IMAGE], b->has_image,
                           &m.gallery_counts[GALLERY_TGIR_TARGET], err);
    if (!st)
        st = write_gallery(b, GALLERY_XMR_TEXT, b->emb[VEC_TEXT], NULL,
                           &m.gallery_counts[GALLERY_XMR_TEXT], err);
    if (!st) st = write_catalog(b, err);
    return st ? st : index_manifest_write(b->work, &m, err);
}

/* Two builds of one out_dir would share its work directory; the second one stops instead. The
 * lock file stays beside out_dir: removing it would race with a build that is taking it. */
static tl_status lock_out_dir(builder *b, tl_error *err) {
    char *path;
    size_t len = strlen(b->o->out_dir);
    while (len > 1 && b->o->out_dir[len - 1] == '/') len--;
    if (asprintf(&path, "%.*s.lock", (int)len, b->o->out_dir) < 0)
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    b->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    tl_status st = TL_OK;
    if (b->lock_fd < 0)
        st = tl_fail(err, TL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    else if (flock(b->lock_fd, LOCK_EX | LOCK_NB))
        st = errno == EWOULDBLOCK
                 ? tl_fail(err, TL_ERR_INVALID, "another build of %s is running (%s is locked)",
                           b->o->out_dir, path)
                 : tl_fail(err, TL_ERR_IO, "cannot lock %s: %s", path, strerror(errno));
    free(path);
    return st;
}

static tl_status prepare(builder *b, tl_error *err) {
    vector_index *check; /* a bad factory or parameter fails before any product is embedded */
    tl_status st = create_gallery_index(b, &check, err);
    if (st) return st;
    vector_index_free(check);
    catalog_parse_opts po = {.strict = b->o->strict,
                             .check_images = 1,
                             .on_product = collect_product,
                             .on_issue = forward_issue,
                             .ctx = b};
    st = catalog_parse_file(b->o->catalog, &po, NULL, err);
    if (st) return st;
    int64_t n = b->products.n ? b->products.n : 1;
    for (int v = 0; v < N_VECTORS; v++)
        if (!(b->emb[v] = malloc((size_t)n * b->dim * sizeof(float))))
            return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    b->has_image = calloc(n, 1);
    if (!(b->work = index_build_work_dir(b->o->out_dir)) || !b->has_image)
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!b->o->resume && (st = index_dir_remove(b->work, err))) return st;
    if (mkdir(b->work, 0755) && errno != EEXIST)
        return tl_fail(err, TL_ERR_IO, "cannot create %s: %s", b->work, strerror(errno));
    return checkpoint_open(b, err);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

tl_status index_build(const index_build_opts *o, index_build_stats *stats, tl_error *err) {
    builder b = {.o = o, .dim = o->embedder->dim, .lock_fd = -1};
    tl_status st = lock_out_dir(&b, err);
    if (!st) st = prepare(&b, err);
    int64_t resumed_at = b.done;
    double t0 = now_s();
    if (!st) st = embed_all(&b, err);
    double t1 = now_s();
    if (!st) {
        char path[4096];
        fclose(b.checkpoint);
        b.checkpoint = NULL;
        st = write_outputs(&b, err);
        if (!st) st = index_dir_path(path, sizeof path, b.work, CHECKPOINT_FILE, err);
        if (!st && unlink(path)) st = tl_fail(err, TL_ERR_IO, "cannot remove %s", path);
        /* The manifest lists every file but the checkpoint, so it goes before publication. */
        if (!st) st = index_dir_publish(b.work, o->out_dir, err);
    }
    if (!st && stats)
        *stats = (index_build_stats){.products = b.products.n,
                                     .embedded = b.done - resumed_at,
                                     .embed_s = t1 - t0,
                                     .index_s = now_s() - t1};
    builder_free(&b);
    return st;
}
