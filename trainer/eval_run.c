/* Evaluation of a checkpoint on a data set split (eval_run.h): model calls in batches, galleries,
 * hit sets, and the per-section skip rules; the formulas are eval_metrics.c's. Not for: argument
 * parsing or printing tables (cli/cmd_eval.c). */
#include "eval_run.h"

#include <cblas.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "progress.h"

const char *const EVAL_SECTION_NAMES[EVAL_N_SECTIONS] = {"xmr", "tgir", "multiturn", "scr", "fic"};

enum { SCORE_CHUNK = 256 }; /* queries scored at once by eval_target_recall */

void eval_default_options(eval_options *opts) {
    *opts = (eval_options){.batch_size = EVAL_DEFAULT_BATCH};
}

/* One evaluation run: the model, the data, and the galleries computed so far (one per
 * embedding kind: plain CLIP, xmr, tgir), shared between sections. */
typedef struct eval_ctx {
    tl_model *m;
    const dataset *ds;
    const eval_options *opts;
    int dim;
    unsigned caps;
    int has_tokenizer;
    float *galleries[3]; /* index task + 1: plain (-1), xmr, tgir */
    progress bar;
    int64_t done;
} eval_ctx;

static size_t limit_queries(const eval_ctx *c, size_t n) {
    size_t max = c->opts->max_queries;
    return max && max < n ? max : n;
}

/* Starts the progress line of section id, which has total model inputs to run, under a line
 * naming the section. */
static void progress_begin(eval_ctx *c, eval_section_id id, size_t total) {
    c->done = 0;
    if (!c->opts->progress) return;
    fprintf(c->opts->progress, "eval %s: %zu inputs\n", EVAL_SECTION_NAMES[id], total);
    progress_start(&c->bar, c->opts->progress, (int64_t)total, 0, progress_now());
}

static void progress_advance(eval_ctx *c, size_t n) {
    if (!c->opts->progress) return;
    c->done += (int64_t)n;
    double now = progress_now(), elapsed = now - c->bar.start_s;
    progress_update(&c->bar, c->done, NULL, 0, elapsed > 0 ? (double)c->done / elapsed : 0, now);
}

static void progress_end(eval_ctx *c) {
    if (c->opts->progress) progress_finish(&c->bar, progress_now());
}

static tl_status skip_section(eval_section *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static tl_status skip_section(eval_section *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->reason, sizeof s->reason, fmt, ap);
    va_end(ap);
    s->ran = 0;
    return TL_OK;
}

static void free_images(tl_image *images, size_t n) {
    for (size_t i = 0; i < n; i++) img_free(&images[i]);
}

/* Decodes the images of items[0..n) into images (caller frees with free_images on success). */
static tl_status read_images(const dataset *ds, const size_t *items, size_t n, tl_image *images,
                             tl_error *err) {
    for (size_t i = 0; i < n; i++) {
        tl_status st = dataset_read_image(ds, items[i], &images[i], err);
        if (st) {
            free_images(images, i);
            return st;
        }
    }
    return TL_OK;
}

/* n row indices 0..n-1, for calls that take an item list; owned by the caller. */
static size_t *identity_indices(size_t n) {
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (idx)
        for (size_t i = 0; i < n; i++) idx[i] = i;
    return idx;
}

/* Embeds the images of items[0..n) with task (-1: plain CLIP) into out[n, dim], in batches. */
static tl_status embed_item_images(eval_ctx *c, int task, const size_t *items, size_t n, float *out,
                                   tl_error *err) {
    size_t batch = (size_t)c->opts->batch_size;
    tl_image *images = calloc(batch, sizeof *images);
    if (!images) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = TL_OK;
    for (size_t at = 0; !st && at < n; at += batch) {
        int k = (int)(n - at < batch ? n - at : batch);
        if ((st = read_images(c->ds, items + at, (size_t)k, images, err))) break;
        float *rows = out + at * (size_t)c->dim;
        st = task < 0 ? tl_embed_images(c->m, images, k, rows, err)
                      : tl_embed_images_task(c->m, (tl_task)task, images, k, rows, err);
        free_images(images, (size_t)k);
        progress_advance(c, (size_t)k);
    }
    free(images);
    return st;
}

/* Embeds texts[0..n) with task (-1: plain CLIP) into out[n, dim], in batches. */
static tl_status embed_texts(eval_ctx *c, int task, const char *const *texts, size_t n, float *out,
                             tl_error *err) {
    size_t batch = (size_t)c->opts->batch_size;
    tl_status st = TL_OK;
    for (size_t at = 0; !st && at < n; at += batch) {
        int k = (int)(n - at < batch ? n - at : batch);
        float *rows = out + at * (size_t)c->dim;
        st = task < 0 ? tl_embed_texts(c->m, texts + at, k, rows, err)
                      : tl_embed_texts_task(c->m, (tl_task)task, texts + at, k, rows, err);
        progress_advance(c, (size_t)k);
    }
    return st;
}

/* Composed queries tl_compose(image of refs[i], texts[i]) into out[n, dim], in batches. */
static tl_status compose_queries(eval_ctx *c, const size_t *refs, const char *const *texts,
                                 size_t n, float *out, tl_error *err) {
    size_t batch = (size_t)c->opts->batch_size;
    tl_image *images = calloc(batch, sizeof *images);
    if (!images) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = TL_OK;
    for (size_t at = 0; !st && at < n; at += batch) {
        int k = (int)(n - at < batch ? n - at : batch);
        if ((st = read_images(c->ds, refs + at, (size_t)k, images, err))) break;
        st = tl_compose(c->m, images, texts + at, k, out + at * (size_t)c->dim, err);
        free_images(images, (size_t)k);
        progress_advance(c, (size_t)k);
    }
    free(images);
    return st;
}

/* Images gallery() still has to embed for task: 0 once computed. */
static size_t gallery_cost(const eval_ctx *c, int task) {
    return c->galleries[task + 1] ? 0 : c->ds->n_items;
}

/* Every item's image embedded with task (-1: plain CLIP), computed once per run; borrowed. */
static tl_status gallery(eval_ctx *c, int task, const float **out, tl_error *err) {
    float **slot = &c->galleries[task + 1];
    if (!*slot) {
        size_t n = c->ds->n_items;
        size_t *items = identity_indices(n);
        float *emb = malloc((n ? n : 1) * (size_t)c->dim * sizeof *emb);
        if (!items || !emb) {
            free(items), free(emb);
            return tl_fail(err, TL_ERR_NOMEM, "out of memory");
        }
        tl_status st = embed_item_images(c, task, items, n, emb, err);
        free(items);
        if (st) {
            free(emb);
            return tl_error_prefix(err, "gallery");
        }
        *slot = emb;
    }
    *out = *slot;
    return TL_OK;
}

/* ---- Hit groups ---- */

static const char *attribute(const dataset_item *item, const char *name) {
    for (size_t a = 0; a < item->n_attributes; a++)
        if (!strcmp(item->attribute_names[a], name)) return item->attribute_values[a];
    return NULL;
}

/* The hit key of an item: its class, colour and pattern, or else its product. Owned by the
 * caller; NULL when out of memory. */
static char *hit_key(const dataset_item *item) {
    const char *cls = attribute(item, "class"), *colour = attribute(item, "colour"),
               *pattern = attribute(item, "pattern");
    char *key = NULL;
    int len = cls && colour && pattern ? asprintf(&key, "a\x1f%s\x1f%s\x1f%s", cls, colour, pattern)
                                       : asprintf(&key, "p\x1f%lld", (long long)item->product);
    return len < 0 ? NULL : key;
}

static int compare_keys(const void *a, const void *b, void *keys) {
    const char *const *k = keys;
    return strcmp(k[*(const size_t *)a], k[*(const size_t *)b]);
}

tl_status eval_item_groups(const dataset *ds, size_t *group, size_t *n_groups, tl_error *err) {
    size_t n = ds->n_items;
    char **keys = calloc(n ? n : 1, sizeof *keys);
    size_t *order = identity_indices(n);
    if (!keys || !order) {
        free(keys), free(order);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    tl_status st = TL_OK;
    for (size_t i = 0; !st && i < n; i++)
        if (!(keys[i] = hit_key(&ds->items[i]))) st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (!st) {
        qsort_r(order, n, sizeof *order, compare_keys, keys);
        size_t g = 0;
        for (size_t i = 0; i < n; i++) {
            if (i && strcmp(keys[order[i]], keys[order[i - 1]])) g++;
            group[order[i]] = g;
        }
        *n_groups = n ? g + 1 : 0;
    }
    for (size_t i = 0; keys && i < n; i++) free(keys[i]);
    free(keys);
    free(order);
    return st;
}

/* ---- Ranking ---- */

/* scores[nq, ng] = queries[nq, dim] · gallery[ng, dim]ᵀ. */
static void dot_scores(const float *queries, size_t nq, const float *gallery, size_t ng, int dim,
                       float *scores) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)ng, dim, 1.0f, queries, dim,
                gallery, dim, 0.0f, scores, (int)ng);
}

/* Items by hit group: group g's members are by_group[start[g] .. start[g + 1]), start holding
 * n_groups + 2 entries (the last one spare). */
static void members_by_group(const size_t *group, size_t n, size_t n_groups, size_t *start,
                             size_t *by_group) {
    memset(start, 0, (n_groups + 2) * sizeof *start);
    for (size_t i = 0; i < n; i++) start[group[i] + 2]++;
    for (size_t g = 0; g < n_groups; g++) start[g + 2] += start[g + 1];
    for (size_t i = 0; i < n; i++) by_group[start[group[i] + 1]++] = i;
}

/* CSR lists of each text's positive images (the members of its item's hit group) from the
 * items' groups. The two arrays are owned by the caller. */
static tl_status gather_positives(const size_t *group, size_t n, size_t n_groups,
                                  const size_t *text_items, size_t n_texts, size_t **offsets_out,
                                  size_t **positives_out, tl_error *err) {
    size_t *start = malloc((n_groups + 2) * sizeof *start);
    size_t *by_group = malloc((n ? n : 1) * sizeof *by_group);
    size_t *offsets = malloc((n_texts + 1) * sizeof *offsets);
    if (!start || !by_group || !offsets) {
        free(start), free(by_group), free(offsets);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    members_by_group(group, n, n_groups, start, by_group);
    offsets[0] = 0;
    for (size_t t = 0; t < n_texts; t++) {
        size_t g = group[text_items[t]];
        offsets[t + 1] = offsets[t] + start[g + 1] - start[g];
    }
    size_t *positives = malloc((offsets[n_texts] + 1) * sizeof *positives);
    if (!positives) {
        free(start), free(by_group), free(offsets);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    for (size_t t = 0; t < n_texts; t++) {
        size_t g = group[text_items[t]];
        memcpy(positives + offsets[t], by_group + start[g],
               (start[g + 1] - start[g]) * sizeof *positives);
    }
    free(start), free(by_group);
    *offsets_out = offsets, *positives_out = positives;
    return TL_OK;
}

/* The CSR positive lists of texts of text_items, by eval_item_groups; owned by the caller. */
static tl_status text_positives(const dataset *ds, const size_t *text_items, size_t n_texts,
                                size_t **offsets_out, size_t **positives_out, tl_error *err) {
    size_t n = ds->n_items, n_groups = 0;
    size_t *group = calloc(n ? n : 1, sizeof *group);
    if (!group) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = eval_item_groups(ds, group, &n_groups, err);
    if (!st)
        st = gather_positives(group, n, n_groups, text_items, n_texts, offsets_out, positives_out,
                              err);
    free(group);
    return st;
}

tl_status eval_xmr_rank(const dataset *ds, const size_t *text_items, const float *text_emb,
                        size_t n_texts, const float *image_emb, int dim, eval_xmr_result *out,
                        tl_error *err) {
    size_t n_images = ds->n_items;
    if (n_texts && n_images > SIZE_MAX / sizeof(float) / n_texts)
        return tl_fail(err, TL_ERR_LIMIT, "xmr: %zu × %zu scores do not fit", n_texts, n_images);
    size_t *offsets = NULL, *positives = NULL;
    tl_status st = text_positives(ds, text_items, n_texts, &offsets, &positives, err);
    if (st) return st;
    size_t n_scores = n_texts * n_images;
    float *scores = malloc((n_scores ? n_scores : 1) * sizeof *scores);
    if (!scores) {
        st = tl_fail(err, TL_ERR_NOMEM, "xmr: out of memory for %zu × %zu scores", n_texts,
                     n_images);
    } else {
        if (n_texts && n_images) dot_scores(text_emb, n_texts, image_emb, n_images, dim, scores);
        st = eval_xmr(scores, n_texts, n_images, offsets, positives, out, err);
    }
    free(scores), free(offsets), free(positives);
    return st;
}

/* Adds query q0 + q's hits to hits[k] for each cut-off, from one chunk of scores. */
static tl_status count_chunk_hits(const float *scores, size_t nq, size_t ng, const size_t *targets,
                                  const int64_t *excluded, const size_t *ks, size_t n_ks,
                                  size_t *hits, tl_error *err) {
    size_t offsets[SCORE_CHUNK + 1];
    for (size_t q = 0; q <= nq; q++) offsets[q] = q;
    eval_retrieval r = {.scores = scores,
                        .n_queries = nq,
                        .n_gallery = ng,
                        .row_stride = ng,
                        .col_stride = 1,
                        .pos_offsets = offsets,
                        .positives = targets,
                        .excluded = excluded};
    for (size_t q = 0; q < nq; q++) {
        size_t rank = 0;
        tl_status st = eval_best_positive_rank(&r, q, &rank, err);
        if (st) return st;
        for (size_t k = 0; k < n_ks; k++) hits[k] += rank <= ks[k];
    }
    return TL_OK;
}

tl_status eval_target_recall(const float *queries, size_t n_queries, const float *gallery,
                             size_t n_gallery, int dim, const size_t *targets,
                             const int64_t *excluded, const size_t *ks, size_t n_ks, double *recall,
                             tl_error *err) {
    if (!n_queries || !n_gallery)
        return tl_fail(err, TL_ERR_INVALID, "retrieval: %zu queries, %zu gallery items", n_queries,
                       n_gallery);
    for (size_t k = 0; k < n_ks; k++)
        if (!ks[k]) return tl_fail(err, TL_ERR_INVALID, "retrieval: K must be ≥ 1");
    float *scores = malloc(SCORE_CHUNK * n_gallery * sizeof *scores);
    size_t *hits = calloc(n_ks ? n_ks : 1, sizeof *hits);
    if (!scores || !hits) {
        free(scores), free(hits);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    tl_status st = TL_OK;
    for (size_t q0 = 0; !st && q0 < n_queries; q0 += SCORE_CHUNK) {
        size_t nq = n_queries - q0 < SCORE_CHUNK ? n_queries - q0 : SCORE_CHUNK;
        dot_scores(queries + q0 * (size_t)dim, nq, gallery, n_gallery, dim, scores);
        st = count_chunk_hits(scores, nq, n_gallery, targets + q0, excluded ? excluded + q0 : NULL,
                              ks, n_ks, hits, err);
    }
    for (size_t k = 0; !st && k < n_ks; k++) recall[k] = (double)hits[k] / (double)n_queries;
    free(scores), free(hits);
    return st;
}

/* ---- Sections ---- */

static tl_status xmr_section(eval_ctx *c, eval_report *r, tl_error *err) {
    eval_section *s = &r->sections[EVAL_XMR];
    if (!c->has_tokenizer) return skip_section(s, "the checkpoint has no tokenizer");
    size_t n_texts = 0;
    for (size_t i = 0; i < c->ds->n_items; i++) n_texts += c->ds->items[i].n_texts;
    n_texts = limit_queries(c, n_texts);
    if (!n_texts) return skip_section(s, "the data set has no captions");
    int task = (c->caps & TL_CAP_XMR) ? TL_TASK_XMR : -1;
    snprintf(s->method, sizeof s->method, "%s",
             task < 0 ? "plain CLIP embeddings (zero-shot)" : "xmr task embeddings");
    size_t *items = malloc(n_texts * sizeof *items);
    const char **texts = malloc(n_texts * sizeof *texts);
    float *text_emb = malloc(n_texts * (size_t)c->dim * sizeof *text_emb);
    if (!items || !texts || !text_emb) {
        free(items), free(texts), free(text_emb);
        return tl_fail(err, TL_ERR_NOMEM, "xmr: out of memory");
    }
    for (size_t i = 0, t = 0; t < n_texts; i++)
        for (size_t j = 0; j < c->ds->items[i].n_texts && t < n_texts; j++, t++)
            items[t] = i, texts[t] = c->ds->items[i].texts[j];
    const float *images = NULL;
    progress_begin(c, EVAL_XMR, gallery_cost(c, task) + n_texts);
    tl_status st = gallery(c, task, &images, err);
    if (!st) st = embed_texts(c, task, texts, n_texts, text_emb, err);
    progress_end(c);
    if (!st) st = eval_xmr_rank(c->ds, items, text_emb, n_texts, images, c->dim, &r->xmr, err);
    free(items), free(texts), free(text_emb);
    if (st) return tl_error_prefix(err, "xmr");
    s->ran = 1, s->n_queries = n_texts, s->n_gallery = c->ds->n_items;
    return TL_OK;
}

/* A triplet's modification text: its caption, or FashionIQ's two joined by " and ". Owned by the
 * caller; NULL when out of memory. */
static char *triplet_text(const dataset_triplet *t) {
    if (t->n_captions < 2) return strdup(t->n_captions ? t->captions[0] : "");
    char *text = NULL;
    return asprintf(&text, "%s and %s", t->captions[0], t->captions[1]) < 0 ? NULL : text;
}

/* Composed queries of n triplets (reference, text) into out[n, dim]. */
static tl_status compose_triplets(eval_ctx *c, const dataset_triplet *const *triplets, size_t n,
                                  float *out, tl_error *err) {
    size_t *refs = malloc((n ? n : 1) * sizeof *refs);
    char **texts = calloc(n ? n : 1, sizeof *texts);
    if (!refs || !texts) {
        free(refs), free(texts);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    tl_status st = TL_OK;
    for (size_t i = 0; !st && i < n; i++) {
        refs[i] = triplets[i]->reference;
        if (!(texts[i] = triplet_text(triplets[i])))
            st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    if (!st) st = compose_queries(c, refs, (const char *const *)texts, n, out, err);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(refs), free(texts);
    return st;
}

/* The embedding task of the composed-query gallery: tgir when the checkpoint has it. */
static int composed_gallery_task(const eval_ctx *c) {
    return (c->caps & TL_CAP_TGIR) ? TL_TASK_TGIR : -1;
}

/* The gallery of composed-query sections (borrowed), and their method text into s. */
static tl_status composed_gallery(eval_ctx *c, eval_section *s, const float **out, tl_error *err) {
    int task = composed_gallery_task(c);
    snprintf(s->method, sizeof s->method, "%s",
             task < 0 ? "zero-shot composition (plain CLIP)" : "tgir task embeddings");
    return gallery(c, task, out, err);
}

/* The gallery index to exclude for a query with this reference and target: the reference,
 * unless it is the target. */
static int64_t excluded_reference(size_t reference, size_t target) {
    return reference == target ? -1 : (int64_t)reference;
}

static tl_status tgir_section(eval_ctx *c, eval_report *r, tl_error *err) {
    eval_section *s = &r->sections[EVAL_TGIR];
    if (!c->has_tokenizer) return skip_section(s, "the checkpoint has no tokenizer");
    size_t n = limit_queries(c, c->ds->n_triplets);
    if (!n) return skip_section(s, "the data set has no triplets");
    const dataset_triplet **triplets = malloc(n * sizeof *triplets);
    size_t *targets = malloc(n * sizeof *targets);
    int64_t *excluded = malloc(n * sizeof *excluded);
    float *queries = malloc(n * (size_t)c->dim * sizeof *queries);
    if (!triplets || !targets || !excluded || !queries) {
        free(triplets), free(targets), free(excluded), free(queries);
        return tl_fail(err, TL_ERR_NOMEM, "tgir: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const dataset_triplet *t = &c->ds->triplets[i];
        triplets[i] = t, targets[i] = t->target;
        excluded[i] = excluded_reference(t->reference, t->target);
    }
    const float *gal = NULL;
    progress_begin(c, EVAL_TGIR, gallery_cost(c, composed_gallery_task(c)) + n);
    tl_status st = composed_gallery(c, s, &gal, err);
    if (!st) st = compose_triplets(c, triplets, n, queries, err);
    progress_end(c);
    const size_t ks[2] = {10, 50};
    double recall[2] = {0};
    if (!st)
        st = eval_target_recall(queries, n, gal, c->ds->n_items, c->dim, targets, excluded, ks, 2,
                                recall, err);
    free(triplets), free(targets), free(excluded), free(queries);
    if (st) return tl_error_prefix(err, "tgir");
    r->tgir = (eval_tgir_result){.r10 = recall[0], .r50 = recall[1]};
    s->ran = 1, s->n_queries = n, s->n_gallery = c->ds->n_items;
    return TL_OK;
}

/* Replays one transaction's turn inputs x[n_turns, dim] through a fresh session; its final
 * query goes to q[dim]. */
static tl_status replay_session(eval_ctx *c, const float *x, size_t n_turns, float *q,
                                tl_error *err) {
    tl_session *session = NULL;
    tl_status st = tl_session_create(c->m, NULL, &session, err);
    for (size_t t = 0; !st && t < n_turns; t++)
        st = tl_session_turn_vec(c->m, session, x + t * (size_t)c->dim, q, err);
    tl_session_free(session);
    return st;
}

/* The first n transactions with at least one turn; returns their count. */
static size_t pick_transactions(const eval_ctx *c, const dataset_transaction **picked, size_t cap) {
    size_t n = 0;
    for (size_t i = 0; i < c->ds->n_transactions && n < cap; i++)
        if (c->ds->transactions[i].n_turns) picked[n++] = &c->ds->transactions[i];
    return n;
}

/* Session queries of transactions[0..n) into queries[n, dim]: every turn composed (in
 * batches), then each transaction replayed through the session API. */
static tl_status session_queries(eval_ctx *c, const dataset_transaction *const *transactions,
                                 size_t n, float *queries, tl_error *err) {
    size_t n_turns = 0;
    for (size_t i = 0; i < n; i++) n_turns += transactions[i]->n_turns;
    const dataset_triplet **turns = malloc(n_turns * sizeof *turns);
    float *x = calloc(n_turns * (size_t)c->dim, sizeof *x);
    if (!turns || !x) {
        free(turns), free(x);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0, t = 0; i < n; i++)
        for (size_t j = 0; j < transactions[i]->n_turns; j++)
            turns[t++] = &transactions[i]->turns[j];
    tl_status st = compose_triplets(c, turns, n_turns, x, err);
    for (size_t i = 0, t = 0; !st && i < n; t += transactions[i]->n_turns, i++)
        st = replay_session(c, x + t * (size_t)c->dim, transactions[i]->n_turns,
                            queries + i * (size_t)c->dim, err);
    free(turns), free(x);
    return st;
}

static tl_status multiturn_section(eval_ctx *c, eval_report *r, tl_error *err) {
    eval_section *s = &r->sections[EVAL_MULTITURN];
    if (!c->has_tokenizer) return skip_section(s, "the checkpoint has no tokenizer");
    size_t cap = limit_queries(c, c->ds->n_transactions);
    const dataset_transaction **picked = malloc((cap ? cap : 1) * sizeof *picked);
    if (!picked) return tl_fail(err, TL_ERR_NOMEM, "multiturn: out of memory");
    size_t n = pick_transactions(c, picked, cap);
    if (!n) {
        free(picked);
        return skip_section(s, "the data set has no multi-turn transactions");
    }
    size_t *targets = malloc(n * sizeof *targets);
    int64_t *excluded = malloc(n * sizeof *excluded);
    float *queries = malloc(n * (size_t)c->dim * sizeof *queries);
    if (!targets || !excluded || !queries) {
        free(picked), free(targets), free(excluded), free(queries);
        return tl_fail(err, TL_ERR_NOMEM, "multiturn: out of memory");
    }
    size_t n_turns = 0;
    for (size_t i = 0; i < n; i++) {
        const dataset_triplet *last = &picked[i]->turns[picked[i]->n_turns - 1];
        targets[i] = picked[i]->final_target;
        excluded[i] = excluded_reference(last->reference, targets[i]);
        n_turns += picked[i]->n_turns;
    }
    const float *gal = NULL;
    progress_begin(c, EVAL_MULTITURN, gallery_cost(c, composed_gallery_task(c)) + n_turns);
    tl_status st = composed_gallery(c, s, &gal, err);
    if (!st) st = session_queries(c, picked, n, queries, err);
    progress_end(c);
    snprintf(s->method + strlen(s->method), sizeof s->method - strlen(s->method), ", %s",
             (c->caps & TL_CAP_NTM) ? "CM-NTM session" : "decayed-sum session");
    const size_t ks[3] = {5, 10, 50};
    double recall[3] = {0};
    if (!st)
        st = eval_target_recall(queries, n, gal, c->ds->n_items, c->dim, targets, excluded, ks, 3,
                                recall, err);
    free(picked), free(targets), free(excluded), free(queries);
    if (st) return tl_error_prefix(err, "multiturn");
    r->multiturn = (eval_multiturn_result){.r5 = recall[0], .r10 = recall[1], .r50 = recall[2]};
    s->ran = 1, s->n_queries = n, s->n_gallery = c->ds->n_items;
    return TL_OK;
}

/* How SCR classifies: the class names, and each data set label's class index (-1: not among
 * them). with_head: the scr head's labels, else zero-shot over the data set's labels. */
typedef struct scr_classes {
    const char *const *names;
    int n;
    int with_head;
    int32_t *of_label; /* [ds->n_labels] */
} scr_classes;

static tl_status scr_classes_init(eval_ctx *c, scr_classes *k, tl_error *err) {
    k->with_head = (c->caps & TL_CAP_SCR) != 0;
    if (k->with_head)
        k->n = tl_scr_labels(c->m, &k->names);
    else
        k->names = (const char *const *)c->ds->labels, k->n = (int)c->ds->n_labels;
    k->of_label = malloc((c->ds->n_labels + 1) * sizeof *k->of_label);
    if (!k->of_label) return tl_fail(err, TL_ERR_NOMEM, "scr: out of memory");
    for (size_t j = 0; j < c->ds->n_labels; j++) {
        k->of_label[j] = -1;
        for (int i = 0; i < k->n && k->of_label[j] < 0; i++)
            if (!strcmp(k->names[i], c->ds->labels[j])) k->of_label[j] = i;
    }
    return TL_OK;
}

/* The true class of item i, or -1 when it has none among the classes. */
static int32_t scr_truth(const eval_ctx *c, const scr_classes *k, size_t i) {
    int32_t label = c->ds->items[i].label;
    return label < 0 || (size_t)label >= c->ds->n_labels ? -1 : k->of_label[label];
}

/* Predicts the class of item i from its image and SCR text into *predicted, and from its
 * image alone (an empty text: what the image tells without the words) into *image_only. */
static tl_status scr_predict(eval_ctx *c, const scr_classes *k, size_t i, float *probs,
                             int32_t *predicted, int32_t *image_only, tl_error *err) {
    tl_image image = {0};
    const char *const *names = k->with_head ? NULL : k->names;
    tl_status st = dataset_read_image(c->ds, i, &image, err);
    if (!st)
        st = tl_classify(c->m, &image, dataset_scr_text(&c->ds->items[i]), names, k->n, probs, err);
    if (!st) *predicted = (int32_t)eval_argmax(probs, (size_t)k->n);
    if (!st) st = tl_classify(c->m, &image, "", names, k->n, probs, err);
    if (!st) *image_only = (int32_t)eval_argmax(probs, (size_t)k->n);
    img_free(&image);
    progress_advance(c, 1);
    return st;
}

/* Classifies up to the query limit of labelled items and scores them. */
static tl_status scr_score(eval_ctx *c, const scr_classes *k, eval_report *r, tl_error *err) {
    size_t cap = limit_queries(c, c->ds->n_items), n = 0;
    int32_t *predicted = malloc((cap + 1) * sizeof *predicted);
    int32_t *image_only = malloc((cap + 1) * sizeof *image_only);
    int32_t *truth = malloc((cap + 1) * sizeof *truth);
    float *probs = malloc((size_t)k->n * sizeof *probs);
    tl_status st = predicted && image_only && truth && probs
                       ? TL_OK
                       : tl_fail(err, TL_ERR_NOMEM, "out of memory");
    progress_begin(c, EVAL_SCR, cap);
    for (size_t i = 0; !st && i < c->ds->n_items && n < cap; i++) {
        if ((truth[n] = scr_truth(c, k, i)) < 0) continue;
        st = scr_predict(c, k, i, probs, &predicted[n], &image_only[n], err);
        n++;
    }
    progress_end(c);
    if (!st) st = eval_classification(predicted, truth, n, (size_t)k->n, &r->scr, err);
    if (!st) st = eval_classification(image_only, truth, n, (size_t)k->n, &r->scr_image_only, err);
    free(predicted), free(image_only), free(truth), free(probs);
    r->sections[EVAL_SCR].n_queries = n;
    return st;
}

static tl_status scr_section(eval_ctx *c, eval_report *r, tl_error *err) {
    eval_section *s = &r->sections[EVAL_SCR];
    if (!c->has_tokenizer) return skip_section(s, "the checkpoint has no tokenizer");
    if (!c->ds->n_labels) return skip_section(s, "the data set has no subcategory labels");
    scr_classes k = {0};
    tl_status st = scr_classes_init(c, &k, err);
    size_t matched = 0;
    for (size_t j = 0; !st && j < c->ds->n_labels; j++) matched += k.of_label[j] >= 0;
    if (!st && !matched) {
        free(k.of_label);
        return skip_section(s,
                            "none of the data set's %zu subcategories is among the scr "
                            "head's %d labels",
                            c->ds->n_labels, k.n);
    }
    snprintf(s->method, sizeof s->method, "%s",
             k.with_head ? "scr head" : "zero-shot CLIP over the data set's subcategories");
    if (!st) st = scr_score(c, &k, r, err);
    free(k.of_label);
    if (st) return tl_error_prefix(err, "scr");
    s->ran = 1, s->n_gallery = (size_t)k.n;
    return TL_OK;
}

/* Greedy caption of item i into text[cap]. */
static tl_status caption_item(eval_ctx *c, size_t i, int32_t *ids, int ids_cap, char *text,
                              size_t cap, tl_error *err) {
    tl_image image = {0};
    const tl_caption_opts greedy = {.beam = 1};
    int n_ids = 0;
    tl_status st = dataset_read_image(c->ds, i, &image, err);
    if (!st) st = tl_caption(c->m, &image, &greedy, ids, ids_cap, &n_ids, text, cap, err);
    img_free(&image);
    progress_advance(c, 1);
    return st;
}

enum { CAPTION_TEXT_CAP = 4096 };

/* Captions up to the query limit of items with captions and scores them against those. */
static tl_status fic_score(eval_ctx *c, eval_report *r, size_t n, tl_error *err) {
    int ids_cap = tl_model_get_info(c->m)->context_length;
    eval_caption_item *items = calloc(n, sizeof *items);
    char *texts = malloc(n * CAPTION_TEXT_CAP);
    int32_t *ids = malloc((size_t)ids_cap * sizeof *ids);
    if (!items || !texts || !ids) {
        free(items), free(texts), free(ids);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    tl_status st = TL_OK;
    progress_begin(c, EVAL_FIC, n);
    for (size_t i = 0, k = 0; !st && k < n; i++) {
        const dataset_item *item = &c->ds->items[i];
        if (!item->n_texts) continue;
        char *text = texts + k * CAPTION_TEXT_CAP;
        st = caption_item(c, i, ids, ids_cap, text, CAPTION_TEXT_CAP, err);
        items[k++] = (eval_caption_item){.candidate = text,
                                         .references = (const char *const *)item->texts,
                                         .n_references = item->n_texts};
    }
    progress_end(c);
    if (!st) st = eval_captions(items, n, &r->fic, err);
    free(items), free(texts), free(ids);
    return st;
}

static tl_status fic_section(eval_ctx *c, eval_report *r, tl_error *err) {
    eval_section *s = &r->sections[EVAL_FIC];
    if (!(c->caps & TL_CAP_FIC))
        return skip_section(s, "the checkpoint has no fic head (TSA_fic, XAA, heads.fic)");
    if (!c->has_tokenizer)
        return skip_section(s, "the checkpoint has no tokenizer to decode captions");
    size_t n = 0;
    for (size_t i = 0; i < c->ds->n_items; i++) n += c->ds->items[i].n_texts > 0;
    n = limit_queries(c, n);
    if (!n) return skip_section(s, "the data set has no captions");
    snprintf(s->method, sizeof s->method, "fic head, greedy decoding");
    tl_status st = fic_score(c, r, n, err);
    if (st) return tl_error_prefix(err, "fic");
    s->ran = 1, s->n_queries = n;
    return TL_OK;
}

tl_status eval_run(tl_model *m, const dataset *ds, const eval_options *opts, eval_report *out,
                   tl_error *err) {
    memset(out, 0, sizeof *out);
    if (opts->batch_size < 1)
        return tl_fail(err, TL_ERR_INVALID, "eval: batch size %d < 1", opts->batch_size);
    if (!ds->n_items) return tl_fail(err, TL_ERR_INVALID, "eval: %s has no items", ds->source);
    const tl_model_info *info = tl_model_get_info(m);
    eval_ctx c = {.m = m,
                  .ds = ds,
                  .opts = opts,
                  .dim = info->projection_dim,
                  .caps = tl_model_capabilities(m),
                  .has_tokenizer = info->has_tokenizer};
    static tl_status (*const sections[EVAL_N_SECTIONS])(eval_ctx *, eval_report *, tl_error *) = {
        xmr_section, tgir_section, multiturn_section, scr_section, fic_section};
    double start = progress_now();
    tl_status st = TL_OK;
    for (int i = 0; !st && i < EVAL_N_SECTIONS; i++) st = sections[i](&c, out, err);
    for (int i = 0; i < 3; i++) free(c.galleries[i]);
    out->seconds = progress_now() - start;
    return st;
}

/* ---- Report ---- */

size_t eval_section_metrics(const eval_report *r, eval_section_id s, const char **names,
                            double *values) {
    if (!r->sections[s].ran) return 0;
    size_t n = 0;
#define METRIC(name, value) (names[n] = (name), values[n++] = (value))
    switch (s) {
        case EVAL_XMR:
            METRIC("t2i_r1", r->xmr.t2i[0]), METRIC("t2i_r5", r->xmr.t2i[1]);
            METRIC("t2i_r10", r->xmr.t2i[2]), METRIC("i2t_r1", r->xmr.i2t[0]);
            METRIC("i2t_r5", r->xmr.i2t[1]), METRIC("i2t_r10", r->xmr.i2t[2]);
            break;
        case EVAL_TGIR:
            METRIC("r10", r->tgir.r10), METRIC("r50", r->tgir.r50);
            break;
        case EVAL_MULTITURN:
            METRIC("r5", r->multiturn.r5), METRIC("r10", r->multiturn.r10);
            METRIC("r50", r->multiturn.r50);
            break;
        case EVAL_SCR:
            METRIC("accuracy", r->scr.accuracy), METRIC("macro_f1", r->scr.macro_f1);
            METRIC("image_only_accuracy", r->scr_image_only.accuracy);
            METRIC("image_only_macro_f1", r->scr_image_only.macro_f1);
            break;
        case EVAL_FIC:
            METRIC("bleu4", r->fic.bleu[3]), METRIC("rouge_l", r->fic.rouge_l);
            METRIC("cider_d", r->fic.cider_d);
            break;
        default:
            break;
    }
#undef METRIC
    return n;
}

static json_t *section_json(const eval_report *r, eval_section_id id) {
    const eval_section *s = &r->sections[id];
    if (!s->ran) return json_pack("{s:s, s:s}", "status", "not available", "reason", s->reason);
    json_t *obj = json_pack("{s:s, s:s, s:I, s:I}", "status", "ok", "method", s->method, "queries",
                            (json_int_t)s->n_queries, "gallery", (json_int_t)s->n_gallery);
    if (obj && id == EVAL_XMR)
        json_object_set_new(obj, "image_queries", json_integer((json_int_t)r->xmr.n_image_queries));
    const char *names[EVAL_MAX_METRICS];
    double values[EVAL_MAX_METRICS];
    size_t n = eval_section_metrics(r, id, names, values);
    for (size_t i = 0; obj && i < n; i++)
        if (json_object_set_new(obj, names[i], json_real(values[i]))) return json_decref(obj), NULL;
    return obj;
}

json_t *eval_report_json(const eval_report *report) {
    json_t *root = json_pack("{s:f}", "seconds", report->seconds);
    for (int i = 0; root && i < EVAL_N_SECTIONS; i++) {
        json_t *section = section_json(report, (eval_section_id)i);
        if (!section || json_object_set_new(root, EVAL_SECTION_NAMES[i], section))
            return json_decref(root), NULL;
    }
    return root;
}
