/* Task heads on encoder outputs: Norm (σ·n(x)), SCR linear + softmax, FIC LM head.
 * Not for: losses (losses.c) or decoding (decode.c). */
#include "heads.h"

#include <math.h>

void norm_head_forward(float *x, int N, int D, float sigma) {
    for (int i = 0; i < N; i++) {
        float *row = x + (size_t)i * D;
        double ss = 0;
        for (int j = 0; j < D; j++) ss += (double)row[j] * row[j];
        float s = ss > 0 ? (float)(sigma / sqrt(ss)) : 0.0f;
        for (int j = 0; j < D; j++) row[j] *= s;
    }
}

void scr_head_forward(tl_backend *be, const tailor_params *p, float *logits, const float *f, int N,
                      int P, int probabilities) {
    be->linear(be, logits, 0, f, 0, p->scr_w, p->scr_b, N, P, p->scr_classes, 0);
    if (probabilities) be->softmax(be, logits, N, p->scr_classes);
}

void fic_head_forward(tl_backend *be, const tailor_params *p, const tl_bf16 *w_bf16, float *logits,
                      const float *h, int N, int Dt, int vocab) {
    tl_linear_prefer_bf16(be, logits, 0, h, 0, p->fic_w, w_bf16, p->fic_b, N, Dt, vocab, 0);
}
