/* Task losses of MODEL.md §2 on logits already computed (host memory, evaluated in double):
 * CE with ignored targets, soft CE, and the symmetric XMR form. Not for: gradients (trainer). */
#ifndef TL_LOSSES_H
#define TL_LOSSES_H

/* CE(z, y): mean over the rows i with targets[i] >= 0 of −log softmax(z_i)[targets[i]];
 * logits (N, C). Rows with a negative target are ignored (0 when every row is). */
double ce_loss(const float *logits, const int *targets, int N, int C);

/* sCE(z, q) = mean over rows of −Σ_c q_ic · log softmax(z_i)_c; logits and q (N, C). */
double soft_ce_loss(const float *logits, const float *q, int N, int C);

/* ½[CE(L, diag) + CE(Lᵀ, diag)] of a square logits matrix L (N, N). */
double symmetric_ce_loss(const float *logits, int N);

#endif
