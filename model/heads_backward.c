/* Training forward/backward of the heads and losses: σ·n(x), matching CE over a batch and
 * mean CE over labelled rows, through the backend's cross-entropy operations.
 * Not for: the inference heads (heads.c) or the encoders. */
#include <stdlib.h>
#include <string.h>

#include "train_heads.h"

tl_status tr_norm_head_forward(tl_backend *be, train_arena *ar, const float *sigma,
                               tr_norm_head_acts *acts, const float *x, int N, int D) {
    acts->x = x;
    acts->unit = train_arena_floats(ar, (size_t)N * D);
    acts->feats = train_arena_floats(ar, (size_t)N * D);
    acts->dfeats = train_arena_floats(ar, (size_t)N * D);
    if (ar->failed) return TL_ERR_NOMEM;
    memcpy(acts->unit, x, (size_t)N * D * sizeof(float));
    be->l2_normalize(be, acts->unit, N, D);
    be->axpy(be, acts->feats, acts->unit, sigma[0], (size_t)N * D);
    return TL_OK;
}

void tr_norm_head_backward(tl_backend *be, train_arena *ar, const float *sigma, float *dsigma,
                           const tr_norm_head_acts *acts, float *dx, int N, int D) {
    size_t n = (size_t)N * D;
    float *dunit = train_arena_floats(ar, n);
    if (ar->failed) return;
    if (dsigma) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)acts->dfeats[i] * acts->unit[i];
        dsigma[0] += (float)s;
    }
    be->axpy(be, dunit, acts->dfeats, sigma[0], n);
    be->l2_normalize_backward(be, dx, dunit, acts->x, N, D);
}

/* out[j, i] = in[i, j] for a square N×N matrix. */
static void transpose(float *out, const float *in, int N) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) out[(size_t)j * N + i] = in[(size_t)i * N + j];
}

tl_status tr_match_loss(tl_backend *be, train_arena *ar, const float *a, const float *b, int N,
                        int D, int symmetric, float *da, float *db, double *loss) {
    size_t nn = (size_t)N * N;
    float *logits = train_arena_floats(ar, nn), *dlogits = train_arena_floats(ar, nn);
    float *lt = train_arena_floats(ar, nn), *dlt = train_arena_floats(ar, nn);
    float *row_loss = train_arena_floats(ar, (size_t)N);
    int *diag = train_arena_alloc(ar, (size_t)N * sizeof(int));
    if (ar->failed) return TL_ERR_NOMEM;
    for (int i = 0; i < N; i++) diag[i] = i;
    be->linear(be, logits, 0, a, 0, b, NULL, N, D, N, 0); /* logits [N, N] = a·bᵀ */
    float w = symmetric ? 0.5f : 1.0f;
    be->cross_entropy(be, row_loss, logits, diag, N, N);
    double total = 0;
    for (int i = 0; i < N; i++) total += row_loss[i];
    be->cross_entropy_backward(be, dlogits, logits, diag, w / N, N, N);
    if (symmetric) {
        transpose(lt, logits, N);
        be->cross_entropy(be, row_loss, lt, diag, N, N);
        for (int i = 0; i < N; i++) total += row_loss[i];
        be->cross_entropy_backward(be, dlt, lt, diag, w / N, N, N);
        transpose(lt, dlt, N);
        be->axpy(be, dlogits, lt, 1.0f, nn);
    }
    *loss = w * total / N;
    /* logits = a·bᵀ: da += dlogits·b, db += dlogitsᵀ·a */
    be->linear_backward(be, da, 0, db, NULL, dlogits, 0, a, 0, b, N, D, N);
    return TL_OK;
}

tl_status tr_ce_loss(tl_backend *be, train_arena *ar, const float *logits, const int *labels,
                     int rows, int n, float *dlogits, double *loss, tl_error *err) {
    float *row_loss = train_arena_floats(ar, (size_t)rows);
    if (ar->failed) return tl_fail(err, TL_ERR_NOMEM, "out of memory for the loss");
    int count = 0;
    for (int r = 0; r < rows; r++) count += labels[r] >= 0;
    if (!count) return tl_fail(err, TL_ERR_INVALID, "loss: no labelled row among %d", rows);
    be->cross_entropy(be, row_loss, logits, labels, rows, n);
    double total = 0;
    for (int r = 0; r < rows; r++) total += row_loss[r];
    *loss = total / count;
    be->cross_entropy_backward(be, dlogits, logits, labels, 1.0f / count, rows, n);
    return TL_OK;
}
