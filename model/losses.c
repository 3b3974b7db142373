/* Forward losses in double precision over float logits: used by refcheck and evaluation.
 * Not for: backward passes (the trainer owns those). */
#include "losses.h"

#include <math.h>
#include <stddef.h>

/* log Σ_c exp(row[c·stride]) computed stably. */
static double log_sum_exp(const float *row, int C, int stride) {
    double mx = -INFINITY, s = 0;
    for (int c = 0; c < C; c++) mx = fmax(mx, row[(size_t)c * stride]);
    for (int c = 0; c < C; c++) s += exp(row[(size_t)c * stride] - mx);
    return mx + log(s);
}

double ce_loss(const float *logits, const int *targets, int N, int C) {
    double sum = 0;
    int counted = 0;
    for (int i = 0; i < N; i++) {
        if (targets[i] < 0) continue;
        const float *row = logits + (size_t)i * C;
        sum += log_sum_exp(row, C, 1) - row[targets[i]];
        counted++;
    }
    return counted ? sum / counted : 0.0;
}

double soft_ce_loss(const float *logits, const float *q, int N, int C) {
    double sum = 0;
    for (int i = 0; i < N; i++) {
        const float *row = logits + (size_t)i * C, *qi = q + (size_t)i * C;
        double lse = log_sum_exp(row, C, 1);
        for (int c = 0; c < C; c++) sum -= qi[c] * (row[c] - lse);
    }
    return N ? sum / N : 0.0;
}

double symmetric_ce_loss(const float *logits, int N) {
    double rows = 0, cols = 0;
    for (int i = 0; i < N; i++) {
        rows += log_sum_exp(logits + (size_t)i * N, N, 1) - logits[(size_t)i * N + i];
        cols += log_sum_exp(logits + i, N, N) - logits[(size_t)i * N + i];
    }
    return N ? 0.5 * (rows + cols) / N : 0.0;
}
