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

static double sum_f32(const float *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    return s;
}

/* One direction of a loss over logits z [rows, n]: CE on labels (rows with label < 0 skipped)
 * and, with teacher logits t, soft-CE against softmax(t) on the same rows; each term's mean
 * over the labelled rows is weighted by w / count. Adds to *loss and, unless forward_only,
 * dz [rows, n] += its gradient. */
static tl_status loss_direction(tl_backend *be, train_arena *ar, const float *z, const float *t,
                                const int *labels, int rows, int n, int count, float w,
                                int forward_only, float *dz, double *loss) {
    float *row_loss = train_arena_floats(ar, (size_t)rows);
    float *q = t ? train_arena_floats(ar, (size_t)rows * n) : NULL;
    if (ar->failed) return TL_ERR_NOMEM;
    be->cross_entropy(be, row_loss, z, labels, rows, n);
    *loss += w * sum_f32(row_loss, rows) / count;
    if (!forward_only) be->cross_entropy_backward(be, dz, z, labels, w / count, rows, n);
    if (!t) return TL_OK;
    for (int r = 0; r < rows; r++) /* softmax(teacher) on the labelled rows, 0 elsewhere */
        if (labels[r] >= 0) memcpy(q + (size_t)r * n, t + (size_t)r * n, (size_t)n * sizeof *q);
    be->softmax(be, q, rows, n);
    for (int r = 0; r < rows; r++)
        if (labels[r] < 0) memset(q + (size_t)r * n, 0, (size_t)n * sizeof *q);
    be->soft_cross_entropy(be, row_loss, z, q, rows, n);
    *loss += w * sum_f32(row_loss, rows) / count;
    if (!forward_only) be->soft_cross_entropy_backward(be, dz, z, q, w / count, rows, n);
    return TL_OK;
}

tl_status tr_match_loss(tl_backend *be, train_arena *ar, const float *a, const float *b, int N,
                        int D, int symmetric, float *da, float *db, const train_distill *kd,
                        double *loss) {
    size_t nn = (size_t)N * N;
    const float *teacher = kd ? kd->teacher_logits : NULL;
    int fwd = kd && kd->forward_only;
    float *logits = train_arena_floats(ar, nn), *dlogits = train_arena_floats(ar, nn);
    float *lt = train_arena_floats(ar, nn), *dlt = train_arena_floats(ar, nn);
    float *tt = teacher ? train_arena_floats(ar, nn) : NULL;
    int *diag = train_arena_alloc(ar, (size_t)N * sizeof(int));
    if (ar->failed) return TL_ERR_NOMEM;
    for (int i = 0; i < N; i++) diag[i] = i;
    be->linear(be, logits, 0, a, 0, b, NULL, N, D, N, 0); /* logits [N, N] = a·bᵀ */
    if (kd && kd->logits) memcpy(kd->logits, logits, nn * sizeof *logits);
    float w = symmetric ? 0.5f : 1.0f;
    *loss = 0;
    tl_status st = loss_direction(be, ar, logits, teacher, diag, N, N, N, w, fwd, dlogits, loss);
    if (!st && symmetric) {
        transpose(lt, logits, N);
        if (tt) transpose(tt, teacher, N);
        st = loss_direction(be, ar, lt, tt, diag, N, N, N, w, fwd, dlt, loss);
        transpose(lt, dlt, N);
        be->axpy(be, dlogits, lt, 1.0f, nn);
    }
    /* logits = a·bᵀ: da += dlogits·b, db += dlogitsᵀ·a */
    if (!st && !fwd) be->linear_backward(be, da, 0, db, NULL, dlogits, 0, a, 0, b, N, D, N);
    return st;
}

tl_status tr_ce_loss(tl_backend *be, train_arena *ar, const float *logits, const int *labels,
                     int rows, int n, float *dlogits, const train_distill *kd, double *loss,
                     tl_error *err) {
    int count = 0;
    for (int r = 0; r < rows; r++) count += labels[r] >= 0;
    if (!count) return tl_fail(err, TL_ERR_INVALID, "loss: no labelled row among %d", rows);
    if (kd && kd->logits) memcpy(kd->logits, logits, (size_t)rows * n * sizeof *logits);
    *loss = 0;
    if (loss_direction(be, ar, logits, kd ? kd->teacher_logits : NULL, labels, rows, n, count, 1.0f,
                       kd && kd->forward_only, dlogits, loss))
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for the loss");
    return TL_OK;
}
