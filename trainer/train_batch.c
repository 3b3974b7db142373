/* Training batches from data sets: decode + CLIP-preprocess images, tokenize texts into rows of
 * the batch's longest length, map SCR labels. Not for: sampling or the model's forwards. */
#include "train_batch.h"

#include <stdlib.h>
#include <string.h>

#include "image.h"

size_t train_batch_pool_size(const dataset *ds, int task) {
    if (task == TRAIN_TASK_TGIR) return ds->n_triplets;
    if (task == TRAIN_TASK_MULTITURN) return ds->n_transactions;
    return ds->n_items;
}

/* CLIP pixels [3, S, S] of item i into out. */
static tl_status item_pixels(const batch_source *src, size_t i, float *out, tl_error *err) {
    tl_image img = {0};
    tl_status st = dataset_read_image(src->ds, i, &img, err);
    if (!st) st = img_clip_preprocess(&img, src->image_size, IMG_CLIP_MEAN, IMG_CLIP_STD, out, err);
    img_free(&img);
    return st;
}

/* Tokenizes texts[0..n) into *ids [n, *stride] (zero padded), stride the longest row. */
static tl_status tokenize_rows(const batch_source *src, const char *const *texts, int n,
                               int32_t **ids, int *stride, tl_error *err) {
    int C = src->context, longest = 1;
    int32_t *all = malloc((size_t)n * C * sizeof *all);
    int *lens = malloc((size_t)n * sizeof *lens);
    tl_status st = all && lens ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "batch texts: out of memory");
    for (int r = 0; r < n && !st; r++) {
        st =
            tok_encode(src->tok, texts[r], strlen(texts[r]), C, all + (size_t)r * C, &lens[r], err);
        if (!st && lens[r] > longest) longest = lens[r];
    }
    *ids = st ? NULL : calloc((size_t)n * longest, sizeof **ids);
    if (!st && !*ids) st = tl_fail(err, TL_ERR_NOMEM, "batch texts: out of memory");
    for (int r = 0; r < n && !st; r++)
        memcpy(*ids + (size_t)r * longest, all + (size_t)r * C, (size_t)lens[r] * sizeof **ids);
    *stride = longest;
    free(all), free(lens);
    return st;
}

static const char *caption_of(const dataset_item *it, uint32_t pick) {
    return it->n_texts ? it->texts[pick % it->n_texts] : it->title ? it->title : "";
}

static const char *triplet_caption(const dataset_triplet *t, uint32_t pick) {
    return t->n_captions ? t->captions[pick % t->n_captions] : "";
}

static tl_status alloc_pixels(float **out, size_t images, int S, tl_error *err) {
    *out = malloc(images * 3 * S * S * sizeof **out);
    return *out ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "batch images: out of memory");
}

/* xmr, scr, fic: items with one text each (scr: the title, else the first text). */
static tl_status build_items(train_batch *b, const batch_source *src, int task, const size_t *idx,
                             const uint32_t *pick, const char **texts, tl_error *err) {
    size_t px = (size_t)3 * src->image_size * src->image_size;
    tl_status st = alloc_pixels(&b->pixels, (size_t)b->B, src->image_size, err);
    if (!st && task == TRAIN_TASK_SCR) {
        b->labels = malloc((size_t)b->B * sizeof *b->labels);
        if (!b->labels) st = tl_fail(err, TL_ERR_NOMEM, "batch labels: out of memory");
    }
    for (int r = 0; r < b->B && !st; r++) {
        const dataset_item *it = &src->ds->items[idx[r]];
        texts[r] = caption_of(it, pick[r]);
        if (task == TRAIN_TASK_SCR) {
            if (it->label < 0)
                return tl_fail(err, TL_ERR_INVALID, "%s: item %lld has no subcategory for scr",
                               src->ds->source, (long long)it->id);
            texts[r] = dataset_scr_text(it);
            b->labels[r] = src->class_of_label[it->label];
        }
        st = item_pixels(src, idx[r], b->pixels + r * px, err);
    }
    return st ? st : tokenize_rows(src, texts, b->B, &b->ids, &b->stride, err);
}

static tl_status build_triplets(train_batch *b, const batch_source *src, const size_t *idx,
                                const uint32_t *pick, const char **texts, tl_error *err) {
    size_t px = (size_t)3 * src->image_size * src->image_size;
    tl_status st = alloc_pixels(&b->pixels, (size_t)b->B, src->image_size, err);
    if (!st) st = alloc_pixels(&b->target_pixels, (size_t)b->B, src->image_size, err);
    for (int r = 0; r < b->B && !st; r++) {
        const dataset_triplet *t = &src->ds->triplets[idx[r]];
        texts[r] = triplet_caption(t, pick[r]);
        st = item_pixels(src, t->reference, b->pixels + r * px, err);
        if (!st) st = item_pixels(src, t->target, b->target_pixels + r * px, err);
    }
    return st ? st : tokenize_rows(src, texts, b->B, &b->ids, &b->stride, err);
}

/* The turns of the batch's shortest transaction. */
static int shortest_transaction(const dataset *ds, const size_t *idx, int B) {
    int T = 0;
    for (int r = 0; r < B; r++) {
        int n = (int)ds->transactions[idx[r]].n_turns;
        T = r == 0 || n < T ? n : T;
    }
    return T;
}

/* multiturn: the first b->turns turns of each transaction. */
static tl_status build_transactions(train_batch *b, const batch_source *src, const size_t *idx,
                                    const uint32_t *pick, const char **texts, tl_error *err) {
    size_t px = (size_t)3 * src->image_size * src->image_size;
    int B = b->B, T = b->turns;
    if (T < 1)
        return tl_fail(err, TL_ERR_INVALID, "%s: a transaction has no turns", src->ds->source);
    tl_status st = alloc_pixels(&b->pixels, (size_t)T * B, src->image_size, err);
    if (!st) st = alloc_pixels(&b->target_pixels, (size_t)B, src->image_size, err);
    for (int r = 0; r < B && !st; r++) {
        const dataset_transaction *tx = &src->ds->transactions[idx[r]];
        for (int t = 0; t < T && !st; t++) {
            texts[t * B + r] = triplet_caption(&tx->turns[t], pick[r] + (uint32_t)t);
            st =
                item_pixels(src, tx->turns[t].reference, b->pixels + ((size_t)t * B + r) * px, err);
        }
        if (!st) st = item_pixels(src, tx->turns[T - 1].target, b->target_pixels + r * px, err);
    }
    return st ? st : tokenize_rows(src, texts, T * B, &b->ids, &b->stride, err);
}

tl_status train_batch_build(train_batch *b, const batch_source *src, int task, const size_t *idx,
                            const uint32_t *pick, int B, tl_error *err) {
    memset(b, 0, sizeof *b);
    b->B = B, b->turns = task == TRAIN_TASK_MULTITURN ? shortest_transaction(src->ds, idx, B) : 1;
    const char **texts = malloc((size_t)(b->turns > 0 ? b->turns : 1) * B * sizeof *texts);
    if (!texts) return tl_fail(err, TL_ERR_NOMEM, "batch texts: out of memory");
    tl_status st;
    if (task == TRAIN_TASK_TGIR)
        st = build_triplets(b, src, idx, pick, texts, err);
    else if (task == TRAIN_TASK_MULTITURN)
        st = build_transactions(b, src, idx, pick, texts, err);
    else
        st = build_items(b, src, task, idx, pick, texts, err);
    free(texts);
    if (st) train_batch_free(b);
    return st;
}

void train_batch_free(train_batch *b) {
    free(b->pixels), free(b->target_pixels), free(b->ids), free(b->labels);
    memset(b, 0, sizeof *b);
}
