/* Evaluation of a checkpoint on one split of a data set: runs the model (embeddings, composed
 * queries, classification, captions), builds galleries and hit sets, and hands the numbers to
 * eval_metrics.h. Shared by `tailor eval` and the trainer's periodic evaluation. Output and hit
 * definitions: proto/eval.md "Evaluating a checkpoint". Not for: metric formulas (eval_metrics.h)
 * or reading data sets (dataset.h). */
#ifndef TL_TRAINER_EVAL_RUN_H
#define TL_TRAINER_EVAL_RUN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dataset.h"
#include "error.h"
#include "eval_metrics.h"
#include "tailor_model.h"

enum { EVAL_DEFAULT_BATCH = 32 };

typedef struct eval_options {
    size_t max_queries; /* at most this many queries per section (texts, triplets, ...); 0 = all */
    int batch_size;     /* images or texts per model call, ≥ 1 */
    FILE *progress;     /* where progress lines go (a bar on a terminal); NULL = silent */
} eval_options;

/* No query limit, EVAL_DEFAULT_BATCH, silent. */
void eval_default_options(eval_options *opts);

typedef enum eval_section_id {
    EVAL_XMR,
    EVAL_TGIR,
    EVAL_MULTITURN,
    EVAL_SCR,
    EVAL_FIC,
    EVAL_N_SECTIONS
} eval_section_id;
extern const char *const EVAL_SECTION_NAMES[EVAL_N_SECTIONS]; /* "xmr", ..., "fic" */

typedef struct eval_section {
    int ran;          /* 1: the section's metrics are valid; 0: skipped, reason says why */
    char reason[200]; /* why it was skipped; "" when it ran */
    char method[96];  /* how the queries were made, e.g. "xmr task embeddings", "zero-shot CLIP" */
    size_t n_queries; /* queries scored (texts, triplets, transactions, items) */
    size_t n_gallery; /* gallery size (retrieval), classes (scr), 0 otherwise */
} eval_section;

typedef struct eval_report {
    eval_section sections[EVAL_N_SECTIONS];
    eval_xmr_result xmr;
    eval_tgir_result tgir;
    eval_multiturn_result multiturn;
    eval_classification_result scr;            /* image + the item's SCR text */
    eval_classification_result scr_image_only; /* image + an empty text */
    eval_caption_result fic;
    double seconds; /* wall time of the whole run */
} eval_report;

/* Evaluates m on ds (already opened on the split to score). Each section either runs or is
 * skipped with a reason (missing capability, tokenizer or data); skipping is not an error.
 * Errors are model or data failures (an unreadable image, ...). out is filled by the call. */
tl_status eval_run(tl_model *m, const dataset *ds, const eval_options *opts, eval_report *out,
                   tl_error *err);

/* The report as a JSON object (layout in proto/eval.md); owned by the caller (json_decref).
 * NULL when out of memory. */
json_t *eval_report_json(const eval_report *report);

enum { EVAL_MAX_METRICS = 6 };

/* The metrics of section s as (name, value) pairs in names/values (room for EVAL_MAX_METRICS),
 * e.g. ("t2i_r1", 0.25); returns their count, 0 when the section was skipped. The JSON report
 * and the CLI table both list these. */
size_t eval_section_metrics(const eval_report *r, eval_section_id s, const char **names,
                            double *values);

/* ---- Lower level, for tests and callers that already hold embeddings ---- */

/* Hit groups of ds's items: group[i] for each item; two items are hits for each other exactly
 * when their groups are equal (same class, colour and pattern attributes when the item has all
 * three, else the same product). *n_groups receives the number of distinct groups. */
tl_status eval_item_groups(const dataset *ds, size_t *group, size_t *n_groups, tl_error *err);

/* XMR in both directions: text t (caption of item text_items[t], embedding text_emb[t, dim])
 * against every item's image (image_emb[n_items, dim], in item order); hits by
 * eval_item_groups. Scores are dot products (the embeddings are unit vectors). */
tl_status eval_xmr_rank(const dataset *ds, const size_t *text_items, const float *text_emb,
                        size_t n_texts, const float *image_emb, int dim, eval_xmr_result *out,
                        tl_error *err);

/* Recall@ks[k] of single-target queries: query q (queries[q, dim]) against gallery[n_gallery,
 * dim] by dot product, its one positive targets[q], and excluded[q] (a gallery index or -1;
 * excluded may be NULL) removed from its ranking. Writes recall[n_ks]. */
tl_status eval_target_recall(const float *queries, size_t n_queries, const float *gallery,
                             size_t n_gallery, int dim, const size_t *targets,
                             const int64_t *excluded, const size_t *ks, size_t n_ks, double *recall,
                             tl_error *err);

#endif
