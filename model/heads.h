/* FAME-ViL task heads (MODEL.md §2): Norm heads σ·n(x) of XMR and TGIR, the SCR classifier
 * and the FIC language-model head. Not for: the encoders feeding them (tasks.c). */
#ifndef TL_HEADS_H
#define TL_HEADS_H

#include "backend.h"
#include "tailor_params.h"

/* In place: each row of x (N, D) becomes sigma · x / ‖x‖₂ (a zero row stays zero). */
void norm_head_forward(float *x, int N, int D, float sigma);

/* logits (N, classes) = f Wᵀ + b on the un-normalised fused vectors f (N, P); with
 * probabilities != 0 the rows are then softmaxed in place. */
void scr_head_forward(tl_backend *be, const tailor_params *p, float *logits, const float *f, int N,
                      int P, int probabilities);

/* logits (N, vocab) = h Wᵀ + b on final-LN text hidden states h (N, Dt); w_bf16: NULL, or a
 * bfloat16 copy of W used instead (the caption decoder's, decode_bf16.c). */
void fic_head_forward(tl_backend *be, const tailor_params *p, const tl_bf16 *w_bf16, float *logits,
                      const float *h, int N, int Dt, int vocab);

#endif
