/* Training forward/backward of the FAME-ViL heads and losses (MODEL.md §2–3): the norm head
 * σ·n(x), matching losses over a batch (XMR symmetric, TGIR and NTM one direction), mean
 * cross-entropy over labelled rows (SCR, FIC), each with an optional distillation term.
 * Loss functions compute the loss and add its gradient in one call (the loss is where a
 * backward starts). Not for: encoders. */
#ifndef TL_TRAIN_HEADS_H
#define TL_TRAIN_HEADS_H

#include "train_arena.h"
#include "train_model.h"

/* Multi-teacher distillation of a loss (MODEL.md §2, eq. 12–16): L = L_task + L_KD with
 * L_KD = soft-CE at temperature 1 against softmax(teacher logits), in the loss's own form
 * (both directions for XMR, every scored position for FIC), averaged like L_task. */
typedef struct train_distill {
    const float *teacher_logits; /* the frozen teacher's logits of this batch, or NULL */
    float *logits;               /* receives this model's logits, or NULL */
    int forward_only;            /* stop after the loss, no gradients (a teacher's run) */
} train_distill;

typedef struct tr_norm_head_acts {
    const float *x; /* [N, D] borrowed input */
    float *unit;    /* [N, D] n(x) */
    float *feats;   /* [N, D] σ·n(x) */
    float *dfeats;  /* [N, D] (zeroed; the loss adds to it) */
} tr_norm_head_acts;

/* feats = sigma[0]·n(x), x [N, D]. */
tl_status tr_norm_head_forward(tl_backend *be, train_arena *ar, const float *sigma,
                               tr_norm_head_acts *acts, const float *x, int N, int D);
/* dsigma[0] (may be NULL) and dx [N, D] += from acts->dfeats. */
void tr_norm_head_backward(tl_backend *be, train_arena *ar, const float *sigma, float *dsigma,
                           const tr_norm_head_acts *acts, float *dx, int N, int D);

/* Matching loss on logits = a·bᵀ [N, N] (a, b [N, D], row i of a matches row i of b):
 * CE(logits, diag), plus CE(logitsᵀ, diag) averaged with it when symmetric, plus the
 * distillation term of kd (may be NULL). *loss gets the value; da, db [N, D] += its gradient
 * (not with kd->forward_only). */
tl_status tr_match_loss(tl_backend *be, train_arena *ar, const float *a, const float *b, int N,
                        int D, int symmetric, float *da, float *db, const train_distill *kd,
                        double *loss);

/* Mean CE over the rows of logits [rows, n] with labels[r] ≥ 0 (others ignored), plus the
 * distillation term of kd (may be NULL) on those rows: *loss gets it, dlogits += its gradient
 * (not with kd->forward_only). No labelled row is TL_ERR_INVALID. */
tl_status tr_ce_loss(tl_backend *be, train_arena *ar, const float *logits, const int *labels,
                     int rows, int n, float *dlogits, const train_distill *kd, double *loss,
                     tl_error *err);

#endif
