/* Training forward and BPTT backward of the cascaded-memory NTM (MODEL.md §3): LSTM
 * controller, content/interpolation/shift/sharpen addressing of a read and a write head,
 * read-then-write memory, output layer, σ_ntm·cos matching loss. Each transaction runs in
 * double on the host (the state is tiny); gradients accumulate into the float parameters.
 * Not for: serving sessions (ntm.c) or computing the turn inputs x_t. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train_heads.h"
#include "train_tasks.h"

/* One head's addressing values of one step. */
typedef struct head_rec {
    double *raw; /* head layer output: k (W), β̃, g̃, s̃ (3), γ̃ [, ẽ (W), a (W)] */
    double beta, g, s[3], gamma;
    double *K, *wc, *wg, *wh, *w, *w_prev; /* [N]: cosine, content, gated, shifted, sharpened */
    double *e;                             /* write head: σ(ẽ) [W] */
} head_rec;

/* Everything one block's step keeps for its backward. */
typedef struct step_rec {
    double *vec;             /* [in + W] LSTM input [u ; r_prev] */
    double *h_prev, *c_prev; /* [H] */
    double *gates;           /* [4H] i, f, g, o after their activations */
    double *cell, *h;        /* [H] */
    double *M_prev;          /* [N, W] memory before the write */
    double *r;               /* [W] read vector */
    double *o;               /* [P] block output */
    head_rec head[2];        /* read, write */
} step_rec;

/* A block's running state (the forward) or its gradient (the backward). */
typedef struct block_state {
    double *M, *h, *cell, *w_r, *w_w, *r;
} block_state;

typedef struct ntm_run {
    const tr_ntm *n;
    train_arena *ar;
    int turns;
    step_rec *steps; /* [turns][blocks] of one transaction */
} ntm_run;

static double *dalloc(train_arena *ar, size_t n) {
    return train_arena_alloc(ar, n * sizeof(double));
}

static double sigmoid(double x) {
    return 1.0 / (1.0 + exp(-x));
}

static double softplus(double x) {
    return fmax(x, 0.0) + log1p(exp(-fabs(x)));
}

/* y[n] = W[n, k]·x + b (b may be NULL). */
static void matvec(double *y, const float *W, const float *b, const double *x, int n, int k) {
    for (int i = 0; i < n; i++) {
        double s = b ? b[i] : 0;
        for (int j = 0; j < k; j++) s += (double)W[(size_t)i * k + j] * x[j];
        y[i] = s;
    }
}

/* Backward of y = W·x + b: dW += dy ⊗ x, db += dy (either NULL when untrained),
 * dx += Wᵀ·dy (dx may be NULL). */
static void matvec_backward(double *dx, float *dW, float *db, const float *W, const double *x,
                            const double *dy, int n, int k) {
    for (int i = 0; i < n; i++) {
        if (db) db[i] += (float)dy[i];
        for (int j = 0; j < k; j++) {
            if (dW) dW[(size_t)i * k + j] += (float)(dy[i] * x[j]);
            if (dx) dx[j] += W[(size_t)i * k + j] * dy[i];
        }
    }
}

static int alloc_step(train_arena *ar, step_rec *s, const tr_ntm *n, int in_dim) {
    int N = n->slots, W = n->width, H = n->hidden;
    s->vec = dalloc(ar, (size_t)in_dim + W);
    s->h_prev = dalloc(ar, H), s->c_prev = dalloc(ar, H), s->gates = dalloc(ar, 4 * (size_t)H);
    s->cell = dalloc(ar, H), s->h = dalloc(ar, H);
    s->M_prev = dalloc(ar, (size_t)N * W), s->r = dalloc(ar, W), s->o = dalloc(ar, n->proj);
    for (int k = 0; k < 2; k++) {
        head_rec *hr = &s->head[k];
        hr->raw = dalloc(ar, k ? 3 * (size_t)W + 6 : (size_t)W + 6);
        hr->K = dalloc(ar, N), hr->wc = dalloc(ar, N), hr->wg = dalloc(ar, N);
        hr->wh = dalloc(ar, N), hr->w = dalloc(ar, N), hr->w_prev = dalloc(ar, N);
        hr->e = dalloc(ar, W);
    }
    return !ar->failed;
}

/* ---- forward of one step ---- */

/* (h, cell) = LSTM(vec, (h_prev, c_prev)); gates i, f, g, o. tmp: [4H]. */
static void lstm_forward(const tr_ntm_block *b, int H, int W, step_rec *s, double *tmp) {
    matvec(s->gates, b->lstm_ih.w, b->lstm_ih.b, s->vec, 4 * H, b->in_dim + W);
    matvec(tmp, b->lstm_hh.w, b->lstm_hh.b, s->h_prev, 4 * H, H);
    for (int j = 0; j < 4 * H; j++) {
        double z = s->gates[j] + tmp[j];
        s->gates[j] = j / H == 2 ? tanh(z) : sigmoid(z);
    }
    for (int j = 0; j < H; j++) {
        const double *g = s->gates;
        s->cell[j] = g[H + j] * s->c_prev[j] + g[j] * g[2 * H + j];
        s->h[j] = g[3 * H + j] * tanh(s->cell[j]);
    }
}

/* Addressing of one head over memory M [N, W] (MODEL.md §3 step 3). */
static void address(head_rec *hr, const double *M, int N, int W) {
    const double *k = hr->raw, *p = hr->raw + W;
    hr->beta = softplus(p[0]), hr->g = sigmoid(p[1]), hr->gamma = 1 + softplus(p[5]);
    double smax = fmax(p[2], fmax(p[3], p[4])), ssum = 0;
    for (int d = 0; d < 3; d++) ssum += hr->s[d] = exp(p[2 + d] - smax);
    for (int d = 0; d < 3; d++) hr->s[d] /= ssum;
    double nk = 0;
    for (int j = 0; j < W; j++) nk += k[j] * k[j];
    nk = sqrt(nk);
    double zmax = -INFINITY, zsum = 0, S = 0;
    for (int i = 0; i < N; i++) {
        double dot = 0, nm = 0;
        for (int j = 0; j < W; j++) dot += k[j] * M[i * W + j], nm += M[i * W + j] * M[i * W + j];
        hr->K[i] = dot / (nk * sqrt(nm) + 1e-8);
        zmax = fmax(zmax, hr->beta * hr->K[i]);
    }
    for (int i = 0; i < N; i++) zsum += hr->wc[i] = exp(hr->beta * hr->K[i] - zmax);
    for (int i = 0; i < N; i++) {
        hr->wc[i] /= zsum;
        hr->wg[i] = hr->g * hr->wc[i] + (1 - hr->g) * hr->w_prev[i];
    }
    for (int i = 0; i < N; i++) {
        hr->wh[i] = hr->s[0] * hr->wg[(i + 1) % N] + hr->s[1] * hr->wg[i] +
                    hr->s[2] * hr->wg[(i - 1 + N) % N];
        S += hr->w[i] = pow(hr->wh[i], hr->gamma);
    }
    for (int i = 0; i < N; i++) hr->w[i] /= S + 1e-16;
}

/* One block step on input u (already in s->vec[0..in)), updating st in place. */
static void step_forward(const tr_ntm *n, const tr_ntm_block *b, step_rec *s, block_state *st,
                         double *tmp) {
    int N = n->slots, W = n->width, H = n->hidden;
    memcpy(s->vec + b->in_dim, st->r, (size_t)W * sizeof(double));
    memcpy(s->h_prev, st->h, (size_t)H * sizeof(double));
    memcpy(s->c_prev, st->cell, (size_t)H * sizeof(double));
    memcpy(s->M_prev, st->M, (size_t)N * W * sizeof(double));
    lstm_forward(b, H, W, s, tmp);
    matvec(s->head[0].raw, b->read.w, b->read.b, s->h, W + 6, H);
    matvec(s->head[1].raw, b->write.w, b->write.b, s->h, 3 * W + 6, H);
    memcpy(s->head[0].w_prev, st->w_r, (size_t)N * sizeof(double));
    memcpy(s->head[1].w_prev, st->w_w, (size_t)N * sizeof(double));
    for (int k = 0; k < 2; k++) address(&s->head[k], s->M_prev, N, W);
    const double *wr = s->head[0].w, *ww = s->head[1].w, *a = s->head[1].raw + 2 * W + 6;
    double *e = s->head[1].e;
    for (int j = 0; j < W; j++) e[j] = sigmoid(s->head[1].raw[W + 6 + j]), s->r[j] = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < W; j++) {
            double m = s->M_prev[i * W + j];
            s->r[j] += wr[i] * m;
            st->M[i * W + j] = m * (1 - ww[i] * e[j]) + ww[i] * a[j];
        }
    memcpy(tmp, s->h, (size_t)H * sizeof(double)); /* [h ; r] */
    memcpy(tmp + H, s->r, (size_t)W * sizeof(double));
    matvec(s->o, b->out.w, b->out.b, tmp, n->proj, H + W);
    memcpy(st->h, s->h, (size_t)H * sizeof(double));
    memcpy(st->cell, s->cell, (size_t)H * sizeof(double));
    memcpy(st->w_r, wr, (size_t)N * sizeof(double));
    memcpy(st->w_w, ww, (size_t)N * sizeof(double));
    memcpy(st->r, s->r, (size_t)W * sizeof(double));
}

static int alloc_state(train_arena *ar, block_state *s, const tr_ntm *n) {
    s->M = dalloc(ar, (size_t)n->slots * n->width), s->h = dalloc(ar, n->hidden);
    s->cell = dalloc(ar, n->hidden), s->w_r = dalloc(ar, n->slots);
    s->w_w = dalloc(ar, n->slots), s->r = dalloc(ar, n->width);
    return !ar->failed;
}

/* Runs every turn of one transaction (x_t at x + t·x_stride) and writes o^C of the last turn
 * to out [P]. */
static tl_status transaction_forward(ntm_run *run, const float *x, size_t x_stride, float *out) {
    const tr_ntm *n = run->n;
    int C = n->blocks, P = n->proj;
    block_state *st = train_arena_alloc(run->ar, sizeof *st * C);
    double *tmp = dalloc(run->ar, 4 * (size_t)n->hidden + n->width);
    if (!st || !tmp) return TL_ERR_NOMEM;
    for (int c = 0; c < C; c++) {
        if (!alloc_state(run->ar, &st[c], n)) return TL_ERR_NOMEM;
        for (size_t i = 0; i < (size_t)n->slots * n->width; i++)
            st[c].M[i] = n->block[c].mem_init[i];
        for (int j = 0; j < n->width; j++) st[c].r[j] = n->block[c].read_init[j];
    }
    for (int t = 0; t < run->turns && !run->ar->failed; t++)
        for (int c = 0; c < C; c++) {
            step_rec *s = &run->steps[t * C + c];
            if (!alloc_step(run->ar, s, n, n->block[c].in_dim)) break;
            if (c) memcpy(s->vec, run->steps[t * C + c - 1].o, (size_t)P * sizeof(double));
            for (int j = 0; j < P; j++) s->vec[(c ? P : 0) + j] = x[t * x_stride + j];
            step_forward(n, &n->block[c], s, &st[c], tmp);
        }
    if (run->ar->failed) return TL_ERR_NOMEM;
    const double *o = run->steps[(run->turns - 1) * C + C - 1].o;
    for (int j = 0; j < P; j++) out[j] = (float)o[j];
    return TL_OK;
}

/* ---- backward of one step ---- */

/* Gradients of one head's addressing: from dw [N] to draw[0..W+6) (k, β̃, g̃, s̃, γ̃),
 * dM [N, W] += (cosine) and dw_prev [N] = (interpolation). */
static void address_backward(const head_rec *hr, const double *M, int N, int W, const double *dw,
                             double *draw, double *dM, double *dw_prev, double *tmp) {
    const double *k = hr->raw, *p = hr->raw + W;
    double *dwg = tmp, *dK = tmp + N, S = 0, dot_w = 0, dgamma = 0, ds[3] = {0};
    for (int i = 0; i < N; i++) S += pow(hr->wh[i], hr->gamma), dot_w += dw[i] * hr->w[i];
    memset(dwg, 0, (size_t)N * sizeof *dwg);
    for (int i = 0; i < N; i++) {
        double dp = (dw[i] - dot_w) / (S + 1e-16);
        double dwh = dp * hr->gamma * pow(hr->wh[i], hr->gamma - 1);
        dgamma += dp * pow(hr->wh[i], hr->gamma) * log(hr->wh[i]);
        int next = (i + 1) % N, prev = (i - 1 + N) % N;
        dwg[next] += hr->s[0] * dwh, dwg[i] += hr->s[1] * dwh, dwg[prev] += hr->s[2] * dwh;
        ds[0] += dwh * hr->wg[next], ds[1] += dwh * hr->wg[i], ds[2] += dwh * hr->wg[prev];
    }
    double dg = 0, dot_c = 0, dbeta = 0;
    for (int i = 0; i < N; i++) {
        dg += dwg[i] * (hr->wc[i] - hr->w_prev[i]);
        dw_prev[i] = (1 - hr->g) * dwg[i];
        dot_c += hr->g * dwg[i] * hr->wc[i];
    }
    for (int i = 0; i < N; i++) {
        double dz = hr->wc[i] * (hr->g * dwg[i] - dot_c);
        dbeta += dz * hr->K[i];
        dK[i] = hr->beta * dz;
    }
    double nk = 0;
    for (int j = 0; j < W; j++) nk += k[j] * k[j];
    nk = sqrt(nk);
    for (int i = 0; i < N; i++) {
        const double *m = M + (size_t)i * W;
        double dot = 0, nm = 0;
        for (int j = 0; j < W; j++) dot += k[j] * m[j], nm += m[j] * m[j];
        nm = sqrt(nm);
        double den = nk * nm + 1e-8;
        for (int j = 0; j < W; j++) {
            double dk = m[j] / den - (nk > 0 ? dot * nm * k[j] / (nk * den * den) : 0);
            double dm = k[j] / den - (nm > 0 ? dot * nk * m[j] / (nm * den * den) : 0);
            draw[j] += dK[i] * dk;
            dM[(size_t)i * W + j] += dK[i] * dm;
        }
    }
    double ds_dot = hr->s[0] * ds[0] + hr->s[1] * ds[1] + hr->s[2] * ds[2];
    draw[W] += dbeta * sigmoid(p[0]);
    draw[W + 1] += dg * hr->g * (1 - hr->g);
    for (int d = 0; d < 3; d++) draw[W + 2 + d] += hr->s[d] * (ds[d] - ds_dot);
    draw[W + 5] += dgamma * sigmoid(p[5]);
}

/* Memory write M_new = M ⊙ (1 − w_w eᵀ) + w_w aᵀ and read r = Σ w_r,i M_i, backward:
 * dM [N, W] += , dwr, dww [N] += , de, da [W] += . */
static void memory_backward(const step_rec *s, int N, int W, const double *dM_new, const double *dr,
                            double *dM, double *dwr, double *dww, double *de, double *da) {
    const double *wr = s->head[0].w, *ww = s->head[1].w, *e = s->head[1].e;
    const double *a = s->head[1].raw + 2 * W + 6;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < W; j++) {
            double g = dM_new[i * W + j], m = s->M_prev[i * W + j];
            dM[i * W + j] += g * (1 - ww[i] * e[j]) + wr[i] * dr[j];
            dww[i] += g * (a[j] - m * e[j]);
            dwr[i] += dr[j] * m;
            de[j] -= g * m * ww[i];
            da[j] += g * ww[i];
        }
}

/* LSTM backward: from dh, dcell (gradients of this step's h and cell) to the weights,
 * dvec [in + W] +=, and the previous dh_prev, dcell_prev [H] (overwritten). dpre: [4H]. */
static void lstm_backward(const tr_ntm_block *b, int H, int W, const step_rec *s, const double *dh,
                          const double *dcell, double *dvec, double *dh_prev, double *dcell_prev,
                          double *dpre) {
    const double *gi = s->gates, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    for (int j = 0; j < H; j++) {
        double tc = tanh(s->cell[j]);
        double dc = dcell[j] + dh[j] * go[j] * (1 - tc * tc);
        dpre[j] = dc * gg[j] * gi[j] * (1 - gi[j]);
        dpre[H + j] = dc * s->c_prev[j] * gf[j] * (1 - gf[j]);
        dpre[2 * H + j] = dc * gi[j] * (1 - gg[j] * gg[j]);
        dpre[3 * H + j] = dh[j] * tc * go[j] * (1 - go[j]);
        dcell_prev[j] = dc * gf[j];
        dh_prev[j] = 0;
    }
    matvec_backward(dvec, b->lstm_ih.dw, b->lstm_ih.db, b->lstm_ih.w, s->vec, dpre, 4 * H,
                    b->in_dim + W);
    matvec_backward(dh_prev, b->lstm_hh.dw, b->lstm_hh.db, b->lstm_hh.w, s->h_prev, dpre, 4 * H, H);
}

/* Scratch of one step's backward, sized for the largest block. */
typedef struct step_grads {
    double *hr, *dhr, *dh, *dM, *dwr, *dww, *draw[2], *dvec, *dpre, *tmp;
} step_grads;

static int alloc_grads(train_arena *ar, step_grads *g, const tr_ntm *n) {
    size_t N = n->slots, W = n->width, H = n->hidden;
    g->hr = dalloc(ar, H + W), g->dhr = dalloc(ar, H + W), g->dh = dalloc(ar, H);
    g->dM = dalloc(ar, N * W), g->dwr = dalloc(ar, N), g->dww = dalloc(ar, N);
    g->draw[0] = dalloc(ar, W + 6), g->draw[1] = dalloc(ar, 3 * W + 6);
    g->dvec = dalloc(ar, 2 * (size_t)n->proj + W), g->dpre = dalloc(ar, 4 * H);
    g->tmp = dalloc(ar, 2 * N);
    return !ar->failed;
}

/* One step backward. do_ [P]: gradient of the block output; ds: on entry the gradient of the
 * step's output state, on return that of its input state; du [in] += the input's gradient. */
static void step_backward(const tr_ntm *n, const tr_ntm_block *b, const step_rec *s,
                          const double *do_, block_state *ds, double *du, step_grads *g) {
    int N = n->slots, W = n->width, H = n->hidden, in = b->in_dim;
    size_t nw = (size_t)N * W;
    memcpy(g->hr, s->h, (size_t)H * sizeof(double));
    memcpy(g->hr + H, s->r, (size_t)W * sizeof(double));
    memset(g->dhr, 0, (size_t)(H + W) * sizeof(double));
    matvec_backward(g->dhr, b->out.dw, b->out.db, b->out.w, g->hr, do_, n->proj, H + W);
    for (int j = 0; j < H; j++) g->dh[j] = ds->h[j] + g->dhr[j];
    for (int j = 0; j < W; j++) g->dhr[H + j] += ds->r[j]; /* dr */
    memset(g->dM, 0, nw * sizeof(double));
    memcpy(g->dwr, ds->w_r, (size_t)N * sizeof(double));
    memcpy(g->dww, ds->w_w, (size_t)N * sizeof(double));
    memset(g->draw[0], 0, (size_t)(W + 6) * sizeof(double));
    memset(g->draw[1], 0, (size_t)(3 * W + 6) * sizeof(double));
    double *de = g->draw[1] + W + 6, *da = g->draw[1] + 2 * W + 6;
    memory_backward(s, N, W, ds->M, g->dhr + H, g->dM, g->dwr, g->dww, de, da);
    for (int j = 0; j < W; j++) de[j] *= s->head[1].e[j] * (1 - s->head[1].e[j]);
    address_backward(&s->head[0], s->M_prev, N, W, g->dwr, g->draw[0], g->dM, ds->w_r, g->tmp);
    address_backward(&s->head[1], s->M_prev, N, W, g->dww, g->draw[1], g->dM, ds->w_w, g->tmp);
    matvec_backward(g->dh, b->read.dw, b->read.db, b->read.w, s->h, g->draw[0], W + 6, H);
    matvec_backward(g->dh, b->write.dw, b->write.db, b->write.w, s->h, g->draw[1], 3 * W + 6, H);
    memset(g->dvec, 0, (size_t)(in + W) * sizeof(double));
    lstm_backward(b, H, W, s, g->dh, ds->cell, g->dvec, ds->h, ds->cell, g->dpre);
    memcpy(ds->M, g->dM, nw * sizeof(double));
    memcpy(ds->r, g->dvec + in, (size_t)W * sizeof(double));
    for (int j = 0; j < in; j++) du[j] += g->dvec[j];
}

/* BPTT over the turns of one transaction from dout [P], the gradient of o^C of the last turn. */
static tl_status transaction_backward(ntm_run *run, const float *dout) {
    const tr_ntm *n = run->n;
    int C = n->blocks, P = n->proj;
    train_arena *ar = run->ar;
    block_state *ds = train_arena_alloc(ar, sizeof *ds * C);
    double *do_ = dalloc(ar, (size_t)C * P), *du = dalloc(ar, 2 * (size_t)P);
    step_grads g;
    if (!ds || !do_ || !du) return TL_ERR_NOMEM;
    for (int c = 0; c < C; c++) alloc_state(ar, &ds[c], n);
    if (!alloc_grads(ar, &g, n) || ar->failed) return TL_ERR_NOMEM;
    for (int t = run->turns - 1; t >= 0; t--) {
        memset(do_, 0, (size_t)C * P * sizeof *do_);
        for (int j = 0; j < P && t == run->turns - 1; j++) do_[(size_t)(C - 1) * P + j] = dout[j];
        for (int c = C - 1; c >= 0; c--) {
            memset(du, 0, 2 * (size_t)P * sizeof *du);
            step_backward(n, &n->block[c], &run->steps[t * C + c], do_ + (size_t)c * P, &ds[c], du,
                          &g);
            for (int j = 0; j < P && c; j++) do_[(size_t)(c - 1) * P + j] += du[j];
        }
    }
    for (int c = 0; c < C; c++) { /* the initial state's learned parts */
        tr_ntm_block *b = &n->block[c];
        for (size_t i = 0; b->dmem_init && i < (size_t)n->slots * n->width; i++)
            b->dmem_init[i] += (float)ds[c].M[i];
        for (int j = 0; b->dread_init && j < n->width; j++) b->dread_init[j] += (float)ds[c].r[j];
    }
    return TL_OK;
}

tl_status train_ntm_step(train_model *m, train_arena *ar, const float *x, const float *gallery,
                         int turns, int B, double *loss, tl_error *err) {
    train_arena_reset(ar);
    const tr_ntm *n = &m->ntm;
    int P = n->proj, C = n->blocks;
    if (turns < 1 || B < 1)
        return tl_fail(err, TL_ERR_INVALID, "ntm step: %d turns of %d transactions", turns, B);
    ntm_run *runs = train_arena_alloc(ar, sizeof *runs * B);
    float *o = train_arena_floats(ar, (size_t)B * P), *dout = train_arena_floats(ar, (size_t)B * P);
    float *dgallery = train_arena_floats(ar, (size_t)B * P);
    tr_norm_head_acts head;
    tl_status st = ar->failed ? TL_ERR_NOMEM : TL_OK;
    for (int b = 0; b < B && !st; b++) {
        runs[b] = (ntm_run){n, ar, turns, NULL};
        runs[b].steps = train_arena_alloc(ar, sizeof(step_rec) * turns * C);
        st = runs[b].steps ? transaction_forward(&runs[b], x + (size_t)b * P, (size_t)B * P,
                                                 o + (size_t)b * P)
                           : TL_ERR_NOMEM;
    }
    if (!st) st = tr_norm_head_forward(m->be, ar, n->scale, &head, o, B, P);
    if (!st)
        st = tr_match_loss(m->be, ar, head.feats, gallery, B, P, 0, head.dfeats, dgallery, NULL, loss);
    if (!st) tr_norm_head_backward(m->be, ar, n->scale, n->dscale, &head, dout, B, P);
    for (int b = 0; b < B && !st && !ar->failed; b++)
        st = transaction_backward(&runs[b], dout + (size_t)b * P);
    if (st || ar->failed) return tl_fail(err, TL_ERR_NOMEM, "ntm step: out of memory");
    return TL_OK;
}
