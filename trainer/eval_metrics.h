/* Evaluation metrics of the four FAME-ViL tasks and multi-turn search, as pure functions over
 * scores, labels and strings (definitions and conventions: proto/eval.md). Not for: running
 * the model, choosing galleries or reading data sets; callers bring the numbers. */
#ifndef TL_TRAINER_EVAL_METRICS_H
#define TL_TRAINER_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A retrieval evaluation: a score matrix and, per query, its set of positive gallery items.
 * score(q, g) = scores[q * row_stride + g * col_stride] (a row-major [queries, gallery] matrix
 * has row_stride = n_gallery, col_stride = 1; its transpose is read by swapping them).
 * Query q's positives are positives[pos_offsets[q] .. pos_offsets[q + 1]) (pos_offsets holds
 * n_queries + 1 entries, starting at 0). excluded may be NULL; otherwise excluded[q] is a
 * gallery index removed from query q's ranking (e.g. the TGIR reference image), or -1. */
typedef struct eval_retrieval {
    const float *scores;
    size_t n_queries, n_gallery;
    size_t row_stride, col_stride;
    const size_t *pos_offsets;
    const size_t *positives;
    const int64_t *excluded;
} eval_retrieval;

/* Recall@K for each of the n_ks cut-offs ks[i] ≥ 1: the fraction of queries with a positive
 * among the K best-scored gallery items. Ties count against the query: a query hits at K when
 * fewer than K non-positive items score at least as high as its best positive. Writes
 * recall[i] in [0, 1]. Fails on zero queries, an empty gallery, a query without positives, an
 * index out of range, or a NaN score. */
tl_status eval_recall_at_k(const eval_retrieval *r, const size_t *ks, size_t n_ks, double *recall,
                           tl_error *err);

/* 1-based rank of query q's best positive under the tie rule above (1 = hit at K = 1). */
tl_status eval_best_positive_rank(const eval_retrieval *r, size_t q, size_t *rank, tl_error *err);

/* Cross-modal retrieval in both directions from one [n_texts, n_images] score matrix
 * (row-major, text × image) and the positive images of each text (CSR as above). The
 * image→text positives are the transpose: text t is positive for image i when i is positive
 * for t. An image no text points at is left out of image→text (it cannot be scored); if no
 * image has a positive the call fails. */
typedef struct eval_xmr_result {
    double t2i[3]; /* text→image R@1, R@5, R@10 */
    double i2t[3]; /* image→text R@1, R@5, R@10 */
    size_t n_image_queries;
} eval_xmr_result;
tl_status eval_xmr(const float *scores, size_t n_texts, size_t n_images, const size_t *pos_offsets,
                   const size_t *positives, eval_xmr_result *out, tl_error *err);

/* Text-guided image retrieval: R@10 and R@50 of composed queries (FashionIQ's metric). */
typedef struct eval_tgir_result {
    double r10, r50;
} eval_tgir_result;
tl_status eval_tgir(const eval_retrieval *r, eval_tgir_result *out, tl_error *err);

/* Multi-turn search: R@5, R@10, R@50 of the final turn's query against the final target. */
typedef struct eval_multiturn_result {
    double r5, r10, r50;
} eval_multiturn_result;
tl_status eval_multiturn(const eval_retrieval *r, eval_multiturn_result *out, tl_error *err);

/* Sub-category recognition: accuracy and macro-F1 of predicted against true class ids in
 * [0, n_classes). Macro-F1 averages F1 = 2TP / (2TP + FP + FN) over the classes that occur
 * among the true or the predicted labels (as scikit-learn's f1_score(average="macro")). */
typedef struct eval_classification_result {
    double accuracy, macro_f1;
    size_t n_classes_present;
} eval_classification_result;
tl_status eval_classification(const int32_t *predicted, const int32_t *truth, size_t n,
                              size_t n_classes, eval_classification_result *out, tl_error *err);

/* Index of the largest of n values (the first one on ties); NaNs are never chosen unless all
 * values are NaN, in which case 0. n must be ≥ 1. */
size_t eval_argmax(const float *values, size_t n);

/* One captioned image: the model's caption and its human references. */
typedef struct eval_caption_item {
    const char *candidate;
    const char *const *references;
    size_t n_references;
} eval_caption_item;

/* Corpus-level captioning scores as pycocoevalcap computes them (proto/eval.md), on text
 * tokenised by eval_tokenize's rules. bleu[n-1] is BLEU-n (corpus level, clipped counts,
 * closest reference length for the brevity penalty); rouge_l and cider_d are means over
 * items. */
typedef struct eval_caption_result {
    double bleu[4];
    double rouge_l;
    double cider_d;
} eval_caption_result;

/* Fails on zero items, an item without references, or a NULL string. */
tl_status eval_captions(const eval_caption_item *items, size_t n_items, eval_caption_result *out,
                        tl_error *err);

/* Tokenises text for the caption metrics: ASCII letters lower-cased, ASCII punctuation deleted,
 * whitespace-separated words kept, other bytes (UTF-8) unchanged. Writes the tokens to out
 * (caller's buffer of at least strlen(text) + 1 bytes) separated by single spaces and
 * NUL-terminated; returns the number of tokens. */
size_t eval_tokenize(const char *text, char *out);

#endif
