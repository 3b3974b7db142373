/* One training step's loss and gradients for each FAME-ViL task and for the CM-NTM
 * (MODEL.md §2–3): the training forward in the task's mode (contrastive, fusion, generative),
 * the loss, and the backward through every part, accumulating into the gradients of the
 * trained parts (untrained parts get none). kd (may be NULL) adds a teacher's distillation
 * term, captures the logits or stops after the loss (train_heads.h; xmr and tgir logits are
 * [B, B] with queries as rows, scr [B, classes], fic [B, T, vocab]). The caller zeroes gradients
 * between steps (train_model_zero_grad) and owns the arena (reset here at the start of each call).
 * Not for: batching, sampling or optimisation (trainer/). */
#ifndef TL_TRAIN_TASKS_H
#define TL_TRAIN_TASKS_H

#include <stdint.h>

#include "train_arena.h"
#include "train_heads.h" /* train_distill */
#include "train_model.h"

/* Text rows: B rows of ids_stride compact ids; each row's EOS is its first highest id. */

/* XMR: images pixels [B, C, S, S] paired with texts; ½[CE(v tᵀ) + CE(t vᵀ)] with
 * v, t = σ_xmr·n(contrastive embeddings with TSA_xmr). */
tl_status train_xmr_step(train_model *m, train_arena *ar, const float *pixels, const int32_t *ids,
                         int ids_stride, int B, const train_distill *kd, double *loss,
                         tl_error *err);

/* TGIR: CE(c gᵀ, diag), c = σ·n(fusion(ref, text) with TSA_tgir), g = σ·n(v(target)). */
tl_status train_tgir_step(train_model *m, train_arena *ar, const float *ref_pixels,
                          const int32_t *ids, int ids_stride, const float *target_pixels, int B,
                          const train_distill *kd, double *loss, tl_error *err);

/* SCR: CE(W f + b, labels), f = fusion(image, text) with TSA_scr (labels in 0..classes-1). */
tl_status train_scr_step(train_model *m, train_arena *ar, const float *pixels, const int32_t *ids,
                         int ids_stride, const int *labels, int B, const train_distill *kd,
                         double *loss, tl_error *err);

/* FIC: teacher forcing on caption ids [B, T] (SOS first) with memory from pixels [B]:
 * positions p < EOS_b predict ids[b, p+1]; mean CE over those positions. */
tl_status train_fic_step(train_model *m, train_arena *ar, const float *pixels, const int32_t *ids,
                         int B, int T, const train_distill *kd, double *loss, tl_error *err);

/* CM-NTM: turns of x [turns, B, P] (used as given), gallery g [B, P];
 * CE(σ_ntm·n(o^C_last) · gᵀ, diag) with BPTT over the turns through every block. */
tl_status train_ntm_step(train_model *m, train_arena *ar, const float *x, const float *gallery,
                         int turns, int B, double *loss, tl_error *err);

#endif
