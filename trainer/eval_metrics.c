/* Retrieval recall and classification metrics (proto/eval.md). The captioning metrics are in
 * eval_metrics_caption.c. Not for: computing the scores; callers pass finished matrices. */
#include "eval_metrics.h"

#include <math.h>
#include <stdlib.h>

static float score_at(const eval_retrieval *r, size_t q, size_t g) {
    return r->scores[q * r->row_stride + g * r->col_stride];
}

static tl_status check_retrieval(const eval_retrieval *r, tl_error *err) {
    if (!r || !r->scores || !r->pos_offsets || !r->positives)
        return tl_fail(err, TL_ERR_INVALID, "retrieval: missing scores or positives");
    if (r->n_queries == 0) return tl_fail(err, TL_ERR_INVALID, "retrieval: no queries");
    if (r->n_gallery == 0) return tl_fail(err, TL_ERR_INVALID, "retrieval: empty gallery");
    if (r->pos_offsets[0] != 0)
        return tl_fail(err, TL_ERR_INVALID, "retrieval: pos_offsets[0] must be 0");
    return TL_OK;
}

static int is_excluded(const eval_retrieval *r, size_t q, size_t g) {
    return r->excluded && r->excluded[q] >= 0 && (uint64_t)r->excluded[q] == g;
}

/* Best score among query q's positives (an excluded positive does not count). */
static tl_status best_positive_score(const eval_retrieval *r, size_t q, float *best,
                                     tl_error *err) {
    size_t begin = r->pos_offsets[q], end = r->pos_offsets[q + 1];
    int found = 0;
    if (end < begin)
        return tl_fail(err, TL_ERR_INVALID, "retrieval: pos_offsets decrease at query %zu", q);
    for (size_t p = begin; p < end; p++) {
        size_t g = r->positives[p];
        if (g >= r->n_gallery)
            return tl_fail(err, TL_ERR_INVALID,
                           "retrieval: query %zu: positive %zu outside the gallery of %zu", q, g,
                           r->n_gallery);
        if (is_excluded(r, q, g)) continue;
        float s = score_at(r, q, g);
        if (isnan(s)) return tl_fail(err, TL_ERR_INVALID, "retrieval: NaN score (%zu, %zu)", q, g);
        if (!found || s > *best) *best = s;
        found = 1;
    }
    if (!found) return tl_fail(err, TL_ERR_INVALID, "retrieval: query %zu has no positive", q);
    return TL_OK;
}

/* How many distinct positives of query q score exactly `best` (not excluded). */
static size_t positives_at_score(const eval_retrieval *r, size_t q, float best) {
    size_t n = 0;
    for (size_t p = r->pos_offsets[q]; p < r->pos_offsets[q + 1]; p++) {
        size_t g = r->positives[p];
        if (is_excluded(r, q, g) || score_at(r, q, g) != best) continue;
        int seen = 0;
        for (size_t e = r->pos_offsets[q]; e < p && !seen; e++) seen = r->positives[e] == g;
        n += !seen;
    }
    return n;
}

tl_status eval_best_positive_rank(const eval_retrieval *r, size_t q, size_t *rank, tl_error *err) {
    tl_status st = check_retrieval(r, err);
    if (st) return st;
    if (q >= r->n_queries)
        return tl_fail(err, TL_ERR_INVALID, "retrieval: query %zu of %zu", q, r->n_queries);
    float best = 0;
    if ((st = best_positive_score(r, q, &best, err))) return st;
    size_t at_least = 0; /* items scoring ≥ best, positives included */
    for (size_t g = 0; g < r->n_gallery; g++) {
        if (is_excluded(r, q, g)) continue;
        float s = score_at(r, q, g);
        if (isnan(s)) return tl_fail(err, TL_ERR_INVALID, "retrieval: NaN score (%zu, %zu)", q, g);
        at_least += s >= best;
    }
    *rank = at_least - positives_at_score(r, q, best) + 1;
    return TL_OK;
}

tl_status eval_recall_at_k(const eval_retrieval *r, const size_t *ks, size_t n_ks, double *recall,
                           tl_error *err) {
    tl_status st = check_retrieval(r, err);
    if (st) return st;
    for (size_t i = 0; i < n_ks; i++) {
        if (ks[i] == 0) return tl_fail(err, TL_ERR_INVALID, "retrieval: K must be ≥ 1");
        recall[i] = 0;
    }
    for (size_t q = 0; q < r->n_queries; q++) {
        size_t rank = 0;
        if ((st = eval_best_positive_rank(r, q, &rank, err))) return st;
        for (size_t i = 0; i < n_ks; i++)
            if (rank <= ks[i]) recall[i] += 1;
    }
    for (size_t i = 0; i < n_ks; i++) recall[i] /= (double)r->n_queries;
    return TL_OK;
}

/* The image→text positives: the transpose of the text→image CSR lists, keeping only images
 * some text points at. Fills *kept_images (the image index of each image query) and the CSR
 * arrays; all three are malloc'ed and owned by the caller. */
static tl_status transpose_positives(size_t n_texts, size_t n_images, const size_t *pos_offsets,
                                     const size_t *positives, size_t **kept_images,
                                     size_t **offsets_out, size_t **positives_out, size_t *n_kept,
                                     tl_error *err) {
    size_t n_pos = pos_offsets[n_texts];
    size_t *count = calloc(n_images + 1, sizeof *count);
    size_t *kept = malloc((n_images + 1) * sizeof *kept);
    size_t *offsets = malloc((n_images + 1) * sizeof *offsets);
    size_t *texts = malloc((n_pos + 1) * sizeof *texts);
    if (!count || !kept || !offsets || !texts) {
        free(count), free(kept), free(offsets), free(texts);
        return tl_fail(err, TL_ERR_NOMEM, "xmr: out of memory");
    }
    for (size_t p = 0; p < n_pos; p++) count[positives[p]]++;
    size_t k = 0;
    offsets[0] = 0;
    for (size_t i = 0; i < n_images; i++) {
        if (!count[i]) continue;
        kept[k] = i;
        offsets[k + 1] = offsets[k] + count[i];
        count[i] = offsets[k]; /* now the next write position of image i's list */
        k++;
    }
    for (size_t t = 0; t < n_texts; t++)
        for (size_t p = pos_offsets[t]; p < pos_offsets[t + 1]; p++)
            texts[count[positives[p]]++] = t;
    free(count);
    *kept_images = kept, *offsets_out = offsets, *positives_out = texts, *n_kept = k;
    return TL_OK;
}

static tl_status check_csr(size_t n_queries, size_t n_gallery, const size_t *pos_offsets,
                           const size_t *positives, tl_error *err) {
    if (!pos_offsets || !positives || pos_offsets[0] != 0)
        return tl_fail(err, TL_ERR_INVALID, "retrieval: bad positive lists");
    for (size_t q = 0; q < n_queries; q++) {
        if (pos_offsets[q + 1] < pos_offsets[q])
            return tl_fail(err, TL_ERR_INVALID, "retrieval: pos_offsets decrease at query %zu", q);
        for (size_t p = pos_offsets[q]; p < pos_offsets[q + 1]; p++)
            if (positives[p] >= n_gallery)
                return tl_fail(err, TL_ERR_INVALID,
                               "retrieval: query %zu: positive %zu outside the gallery of %zu", q,
                               positives[p], n_gallery);
    }
    return TL_OK;
}

static const size_t XMR_KS[3] = {1, 5, 10};

/* Image→text recall over the images some text points at (rows of the transposed matrix). */
static tl_status xmr_image_to_text(const float *scores, size_t n_texts, size_t n_images,
                                   const size_t *pos_offsets, const size_t *positives,
                                   eval_xmr_result *out, tl_error *err) {
    size_t *kept = NULL, *offsets = NULL, *texts = NULL, n_kept = 0;
    tl_status st = transpose_positives(n_texts, n_images, pos_offsets, positives, &kept, &offsets,
                                       &texts, &n_kept, err);
    if (st) return st;
    out->n_image_queries = n_kept;
    for (size_t i = 0; i < 3; i++) out->i2t[i] = 0;
    for (size_t k = 0; k < n_kept && !st; k++) {
        /* One query row: image kept[k] against every text (a column of the text × image matrix). */
        size_t one_offsets[2] = {0, offsets[k + 1] - offsets[k]};
        eval_retrieval row = {.scores = scores + kept[k],
                              .n_queries = 1,
                              .n_gallery = n_texts,
                              .row_stride = 0,
                              .col_stride = n_images,
                              .pos_offsets = one_offsets,
                              .positives = texts + offsets[k]};
        double hit[3];
        st = eval_recall_at_k(&row, XMR_KS, 3, hit, err);
        for (size_t i = 0; i < 3 && !st; i++) out->i2t[i] += hit[i];
    }
    for (size_t i = 0; i < 3 && n_kept; i++) out->i2t[i] /= (double)n_kept;
    free(kept), free(offsets), free(texts);
    if (!st && n_kept == 0) return tl_fail(err, TL_ERR_INVALID, "xmr: no image has a positive");
    return st;
}

tl_status eval_xmr(const float *scores, size_t n_texts, size_t n_images, const size_t *pos_offsets,
                   const size_t *positives, eval_xmr_result *out, tl_error *err) {
    if (!scores || n_texts == 0 || n_images == 0)
        return tl_fail(err, TL_ERR_INVALID, "xmr: empty score matrix");
    tl_status st = check_csr(n_texts, n_images, pos_offsets, positives, err);
    if (st) return st;
    eval_retrieval t2i = {.scores = scores,
                          .n_queries = n_texts,
                          .n_gallery = n_images,
                          .row_stride = n_images,
                          .col_stride = 1,
                          .pos_offsets = pos_offsets,
                          .positives = positives};
    if ((st = eval_recall_at_k(&t2i, XMR_KS, 3, out->t2i, err))) return st;
    return xmr_image_to_text(scores, n_texts, n_images, pos_offsets, positives, out, err);
}

tl_status eval_tgir(const eval_retrieval *r, eval_tgir_result *out, tl_error *err) {
    static const size_t ks[2] = {10, 50};
    double recall[2];
    tl_status st = eval_recall_at_k(r, ks, 2, recall, err);
    if (st) return st;
    out->r10 = recall[0], out->r50 = recall[1];
    return TL_OK;
}

tl_status eval_multiturn(const eval_retrieval *r, eval_multiturn_result *out, tl_error *err) {
    static const size_t ks[3] = {5, 10, 50};
    double recall[3];
    tl_status st = eval_recall_at_k(r, ks, 3, recall, err);
    if (st) return st;
    out->r5 = recall[0], out->r10 = recall[1], out->r50 = recall[2];
    return TL_OK;
}

/* Per-class counts: true positives, predictions and true labels. */
typedef struct class_counts {
    size_t tp, predicted, actual;
} class_counts;

tl_status eval_classification(const int32_t *predicted, const int32_t *truth, size_t n,
                              size_t n_classes, eval_classification_result *out, tl_error *err) {
    if (n == 0 || n_classes == 0)
        return tl_fail(err, TL_ERR_INVALID, "classification: no samples or no classes");
    for (size_t i = 0; i < n; i++)
        if (predicted[i] < 0 || (size_t)predicted[i] >= n_classes || truth[i] < 0 ||
            (size_t)truth[i] >= n_classes)
            return tl_fail(err, TL_ERR_INVALID,
                           "classification: sample %zu: label outside [0, %zu)", i, n_classes);
    class_counts *counts = calloc(n_classes, sizeof *counts);
    if (!counts) return tl_fail(err, TL_ERR_NOMEM, "classification: out of memory");
    size_t correct = 0;
    for (size_t i = 0; i < n; i++) {
        counts[predicted[i]].predicted++;
        counts[truth[i]].actual++;
        if (predicted[i] == truth[i]) counts[truth[i]].tp++, correct++;
    }
    double f1_sum = 0;
    size_t present = 0;
    for (size_t c = 0; c < n_classes; c++) {
        size_t fp = counts[c].predicted - counts[c].tp, fn = counts[c].actual - counts[c].tp;
        if (counts[c].tp + fp + fn == 0) continue;
        f1_sum += 2.0 * (double)counts[c].tp / (double)(2 * counts[c].tp + fp + fn);
        present++;
    }
    free(counts);
    out->accuracy = (double)correct / (double)n;
    out->macro_f1 = f1_sum / (double)present;
    out->n_classes_present = present;
    return TL_OK;
}

size_t eval_argmax(const float *values, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (!isnan(values[i]) && (isnan(values[best]) || values[i] > values[best])) best = i;
    return best;
}
