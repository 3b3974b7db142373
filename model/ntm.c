/* One session turn: the CM-NTM block step of MODEL.md §3 (LSTM controller, content + location
 * addressing, read before write, erase/add) cascaded over C blocks, or the decayed-sum fallback.
 * Not for: configuration, tensors or state layout (ntm_config.c, ntm_weights.c, ntm_state.c). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntm.h"

struct ntm_workspace {
    float *z;         /* [2P + W] LSTM input [u ; r_prev] */
    float *gates;     /* [4H] i, f, g, o pre-activations */
    float *read_out;  /* [W + 6] read head: k, β̃, g̃, s̃(3), γ̃ */
    float *write_out; /* [3W + 6] write head: k, β̃, g̃, s̃(3), γ̃, ẽ, a */
    float *hr;        /* [H + W] output layer input [h ; r] */
    float *o;         /* [P] this block's output */
    float *w_read;    /* [N] new read weights */
    float *w_write;   /* [N] new write weights */
    float *scratch;   /* [N] addressing */
    float *buffer;    /* the one allocation behind the views above */
};

ntm_workspace *ntm_workspace_create(const ntm_config *cfg) {
    ntm_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t N = (size_t)cfg->slots, W = (size_t)cfg->width, H = (size_t)cfg->hidden;
    size_t P = (size_t)cfg->proj;
    size_t sizes[] = {2 * P + W, 4 * H, W + 6, 3 * W + 6, H + W, P, N, N, N};
    float **views[] = {&ws->z, &ws->gates,  &ws->read_out, &ws->write_out, &ws->hr,
                       &ws->o, &ws->w_read, &ws->w_write,  &ws->scratch};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += sizes[i];
    ws->buffer = calloc(total, sizeof(float));
    if (!ws->buffer) {
        free(ws);
        return NULL;
    }
    float *p = ws->buffer;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) *views[i] = p, p += sizes[i];
    return ws;
}

void ntm_workspace_free(ntm_workspace *ws) {
    if (!ws) return;
    free(ws->buffer);
    free(ws);
}

static float sigmoid(float x) {
    return 1.0f / (1.0f + expf(-x));
}

static float softplus(float x) {
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

static void softmax_inplace(float *v, int n) {
    float max = v[0], sum = 0.0f;
    for (int i = 1; i < n; i++) max = fmaxf(max, v[i]);
    for (int i = 0; i < n; i++) sum += v[i] = expf(v[i] - max);
    for (int i = 0; i < n; i++) v[i] /= sum;
}

static float norm2(const float *v, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += v[i] * v[i];
    return sqrtf(s);
}

/* y[rows] = A[rows, cols] x[cols] + bias[rows] */
static void affine(const float *A, const float *bias, const float *x, int rows, int cols,
                   float *y) {
    memcpy(y, bias, (size_t)rows * sizeof *y);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, A, cols, x, 1, 1.0f, y, 1);
}

/* (h, cell) = LSTM(z, (h, cell)); z is [in + W], gates i, f, g, o, both biases. */
static void lstm_step(const ntm_block_weights *b, int H, int z_len, const float *z, float *h,
                      float *cell, float *gates) {
    affine(b->lstm_w_ih, b->lstm_b_ih, z, 4 * H, z_len, gates);
    for (int i = 0; i < 4 * H; i++) gates[i] += b->lstm_b_hh[i];
    cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * H, H, 1.0f, b->lstm_w_hh, H, h, 1, 1.0f, gates, 1);
    for (int j = 0; j < H; j++) {
        float in = sigmoid(gates[j]), forget = sigmoid(gates[H + j]);
        float cand = tanhf(gates[2 * H + j]), out = sigmoid(gates[3 * H + j]);
        cell[j] = forget * cell[j] + in * cand;
        h[j] = out * tanhf(cell[j]);
    }
}

/* w_out[N] = the head's weights over memory M[N, W]. head = k (W), β̃, g̃, s̃ (3), γ̃; w_prev [N]
 * is the head's previous weighting; scratch [N]. */
static void address(const float *M, int N, int W, const float *head, const float *w_prev,
                    float *w_out, float *scratch) {
    const float *k = head;
    float beta = softplus(head[W]), g = sigmoid(head[W + 1]);
    float shift[3] = {head[W + 2], head[W + 3], head[W + 4]};
    float gamma = 1.0f + softplus(head[W + 5]);
    softmax_inplace(shift, 3);
    float k_norm = norm2(k, W);
    for (int i = 0; i < N; i++) {
        const float *m = M + (size_t)i * W;
        float dot = 0.0f;
        for (int j = 0; j < W; j++) dot += k[j] * m[j];
        scratch[i] = beta * dot / (k_norm * norm2(m, W) + 1e-8f);
    }
    softmax_inplace(scratch, N);
    for (int i = 0; i < N; i++) scratch[i] = g * scratch[i] + (1.0f - g) * w_prev[i];
    float sum = 0.0f;
    for (int i = 0; i < N; i++) {
        float shifted = shift[0] * scratch[(i + 1) % N] + shift[1] * scratch[i] +
                        shift[2] * scratch[(i + N - 1) % N];
        sum += w_out[i] = powf(shifted, gamma);
    }
    for (int i = 0; i < N; i++) w_out[i] /= sum + 1e-16f;
}

/* r[W] = Σ_i w_i M_i */
static void memory_read(const float *M, int N, int W, const float *w, float *r) {
    memset(r, 0, (size_t)W * sizeof *r);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < W; j++) r[j] += w[i] * M[(size_t)i * W + j];
}

/* M_i ← M_i ⊙ (1 − w_i e) + w_i a; e = σ(ẽ) [W], a [W]. */
static void memory_write(float *M, int N, int W, const float *w, const float *e, const float *a) {
    for (int i = 0; i < N; i++) {
        float *m = M + (size_t)i * W;
        for (int j = 0; j < W; j++) m[j] = m[j] * (1.0f - w[i] * e[j]) + w[i] * a[j];
    }
}

/* One block on ws->z[0, in) = u: updates s and leaves the block output in ws->o [P]. */
static void block_step(const ntm_block_weights *b, const ntm_config *cfg, ntm_block_state *s,
                       ntm_workspace *ws) {
    int N = cfg->slots, W = cfg->width, H = cfg->hidden, P = cfg->proj;
    memcpy(ws->z + b->in_dim, s->r, (size_t)W * sizeof(float));
    lstm_step(b, H, b->in_dim + W, ws->z, s->h, s->cell, ws->gates);
    affine(b->read_w, b->read_b, s->h, W + 6, H, ws->read_out);
    affine(b->write_w, b->write_b, s->h, 3 * W + 6, H, ws->write_out);
    address(s->M, N, W, ws->read_out, s->w_r, ws->w_read, ws->scratch);
    address(s->M, N, W, ws->write_out, s->w_w, ws->w_write, ws->scratch);
    memory_read(s->M, N, W, ws->w_read, s->r);
    float *erase = ws->write_out + W + 6;
    for (int j = 0; j < W; j++) erase[j] = sigmoid(erase[j]);
    memory_write(s->M, N, W, ws->w_write, erase, erase + W);
    memcpy(s->w_r, ws->w_read, (size_t)N * sizeof(float));
    memcpy(s->w_w, ws->w_write, (size_t)N * sizeof(float));
    memcpy(ws->hr, s->h, (size_t)H * sizeof(float));
    memcpy(ws->hr + H, s->r, (size_t)W * sizeof(float));
    affine(b->out_w, b->out_b, ws->hr, P, H + W, ws->o);
}

static void trace_block(ntm_trace *t, const ntm_config *cfg, int c, const ntm_block_state *s,
                        const float *o) {
    size_t N = (size_t)cfg->slots, W = (size_t)cfg->width, P = (size_t)cfg->proj;
    if (t->block_outputs) memcpy(t->block_outputs + c * P, o, P * sizeof(float));
    if (t->read_weights) memcpy(t->read_weights + c * N, s->w_r, N * sizeof(float));
    if (t->write_weights) memcpy(t->write_weights + c * N, s->w_w, N * sizeof(float));
    if (t->read_vectors) memcpy(t->read_vectors + c * W, s->r, W * sizeof(float));
}

/* out[n] = scale · v / ‖v‖ (zeros when v = 0) */
static void scaled_unit(const float *v, int n, float scale, float *out) {
    float norm = norm2(v, n);
    for (int i = 0; i < n; i++) out[i] = norm > 0.0f ? scale * v[i] / norm : 0.0f;
}

static void cascade_turn(const ntm_weights *w, ntm_state *s, const float *x, ntm_trace *trace) {
    const ntm_config *cfg = &w->cfg;
    size_t P = (size_t)cfg->proj;
    ntm_workspace *ws = w->ws;
    for (int c = 0; c < cfg->blocks; c++) {
        if (c == 0) {
            memcpy(ws->z, x, P * sizeof(float));
        } else {
            memcpy(ws->z, ws->o, P * sizeof(float));
            memcpy(ws->z + P, x, P * sizeof(float));
        }
        block_step(&w->blocks[c], cfg, &s->blocks[c], ws);
        if (trace) trace_block(trace, cfg, c, &s->blocks[c], ws->o);
    }
    scaled_unit(ws->o, cfg->proj, w->scale, s->q);
}

static void decayed_sum_turn(const ntm_config *cfg, ntm_state *s, const float *x) {
    for (int i = 0; i < cfg->proj; i++) s->decayed_sum[i] = cfg->decay * s->decayed_sum[i] + x[i];
    scaled_unit(s->decayed_sum, cfg->proj, 1.0f, s->q);
}

tl_status ntm_turn(const ntm_weights *w, ntm_state *s, const float *x, float *q_out,
                   ntm_trace *trace, tl_error *err) {
    if (!s->values || !ntm_config_same_layout(&s->cfg, &w->cfg))
        return tl_fail(err, TL_ERR_INVALID, "session state does not match the model's NTM");
    for (int i = 0; i < w->cfg.proj; i++)
        if (!isfinite(x[i]))
            return tl_fail(err, TL_ERR_INVALID, "turn input x[%d] is not finite", i);
    if (w->cfg.kind == NTM_KIND_CASCADE)
        cascade_turn(w, s, x, trace);
    else
        decayed_sum_turn(&w->cfg, s, x);
    s->turns++;
    if (q_out) memmove(q_out, s->q, (size_t)w->cfg.proj * sizeof(float));
    return TL_OK;
}
