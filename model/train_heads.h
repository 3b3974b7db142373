/* Training forward/backward of the FAME-ViL heads and losses (MODEL.md §2–3): the norm head
 * σ·n(x), matching losses over a batch (XMR symmetric, TGIR and NTM one direction), mean
 * cross-entropy over labelled rows (SCR, FIC). Loss functions compute the loss and add its
 * gradient in one call (the loss is where a backward starts). Not for: encoders. */
#ifndef TL_TRAIN_HEADS_H
#define TL_TRAIN_HEADS_H

#include "train_arena.h"
#include "train_model.h"

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

/* Matching loss on logits = a·bᵀ (a, b [N, D], row i of a matches row i of b):
 * CE(logits, diag), plus CE(logitsᵀ, diag) averaged with it when symmetric. *loss gets the
 * value; da, db [N, D] += its gradient. */
tl_status tr_match_loss(tl_backend *be, train_arena *ar, const float *a, const float *b, int N,
                        int D, int symmetric, float *da, float *db, double *loss);

/* Mean CE over the rows of logits [rows, n] with labels[r] ≥ 0 (others ignored): *loss gets it,
 * dlogits += its gradient. No labelled row is TL_ERR_INVALID. */
tl_status tr_ce_loss(tl_backend *be, train_arena *ar, const float *logits, const int *labels,
                     int rows, int n, float *dlogits, double *loss, tl_error *err);

#endif
