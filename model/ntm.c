/* Session turns: the CM-NTM block step of MODEL.md §3 (LSTM controller, content + location
 * addressing, read before write, erase/add) cascaded over C blocks, or the decayed-sum fallback,
 * for a batch of sessions at once: the products run on the backend's linear_reproducible, so a
 * session's result never depends on its batch. Not for: configuration, tensors or state layout
 * (ntm_config.c, ntm_weights.c, ntm_state.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ntm.h"

/* Per-session rows for up to NTM_BATCH_MAX sessions (session i's row at i × the row width),
 * then one session's addressing scratch. */
struct ntm_workspace {
    float *z;         /* [B, 2P + W] LSTM input [u ; r_prev] */
    float *gates;     /* [B, 4H] i, f, g, o pre-activations */
    float *read_out;  /* [B, W + 6] read head: k, β̃, g̃, s̃(3), γ̃ */
    float *write_out; /* [B, 3W + 6] write head: k, β̃, g̃, s̃(3), γ̃, ẽ, a */
    float *hr;        /* [B, H + W] [h ; r]: h_prev for the LSTM, then the new h and r */
    float *o;         /* [B, P] this block's outputs */
    float *w_read;    /* [N] new read weights */
    float *w_write;   /* [N] new write weights */
    float *scratch;   /* [N] addressing */
    float *buffer;    /* the one allocation behind the views above */
};

ntm_workspace *ntm_workspace_create(const ntm_config *cfg) {
    ntm_workspace *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t N = (size_t)cfg->slots, W = (size_t)cfg->width, H = (size_t)cfg->hidden;
    size_t P = (size_t)cfg->proj, B = NTM_BATCH_MAX;
    size_t sizes[] = {
        B * (2 * P + W), B * 4 * H, B * (W + 6), B * (3 * W + 6), B * (H + W), B * P, N, N, N};
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

/* Row i of a buffer of rows `width` floats wide. */
static float *row_of(float *rows, int width, int i) {
    return rows + (size_t)i * width;
}

/* (h, cell) = LSTM cell update from gates [4H] (pre-activations i, f, g, o). */
static void lstm_cell(const float *gates, int H, float *h, float *cell) {
    for (int j = 0; j < H; j++) {
        float in = sigmoid(gates[j]), forget = sigmoid(gates[H + j]);
        float cand = tanhf(gates[2 * H + j]), out = sigmoid(gates[3 * H + j]);
        cell[j] = forget * cell[j] + in * cand;
        h[j] = out * tanhf(cell[j]);
    }
}

/* Block c's LSTM for n sessions whose ws->z rows start with u: z = [u ; r_prev],
 * gates = W_ih z + b_ih + W_hh h_prev + b_hh, then each (h, cell) steps and the new h is left
 * at the start of its ws->hr row. */
static void lstm_step(const ntm_weights *w, int c, ntm_state *const *s, int n, ntm_workspace *ws) {
    const ntm_block_weights *b = &w->blocks[c];
    int W = w->cfg.width, H = w->cfg.hidden, P = w->cfg.proj;
    int ldz = 2 * P + W, ldhr = H + W;
    for (int i = 0; i < n; i++) {
        const ntm_block_state *bs = &s[i]->blocks[c];
        memcpy(row_of(ws->z, ldz, i) + b->in_dim, bs->r, (size_t)W * sizeof(float));
        memcpy(row_of(ws->hr, ldhr, i), bs->h, (size_t)H * sizeof(float));
    }
    tl_backend *be = w->be;
    be->linear_reproducible(be, ws->gates, 4 * H, ws->z, ldz, b->lstm_w_ih, b->lstm_b_ih, n,
                            b->in_dim + W, 4 * H, 0);
    be->linear_reproducible(be, ws->gates, 4 * H, ws->hr, ldhr, b->lstm_w_hh, b->lstm_b_hh, n, H,
                            4 * H, 1);
    for (int i = 0; i < n; i++) {
        ntm_block_state *bs = &s[i]->blocks[c];
        lstm_cell(row_of(ws->gates, 4 * H, i), H, bs->h, bs->cell);
        memcpy(row_of(ws->hr, ldhr, i), bs->h, (size_t)H * sizeof(float));
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

/* One session's memory step from its head outputs: addressing, read (r into bs and after h in
 * its hr row), erase/add write, and the new head weights. */
static void memory_step(const ntm_config *cfg, ntm_block_state *bs, float *read_out,
                        float *write_out, float *hr_row, ntm_workspace *ws) {
    int N = cfg->slots, W = cfg->width, H = cfg->hidden;
    address(bs->M, N, W, read_out, bs->w_r, ws->w_read, ws->scratch);
    address(bs->M, N, W, write_out, bs->w_w, ws->w_write, ws->scratch);
    memory_read(bs->M, N, W, ws->w_read, bs->r);
    float *erase = write_out + W + 6;
    for (int j = 0; j < W; j++) erase[j] = sigmoid(erase[j]);
    memory_write(bs->M, N, W, ws->w_write, erase, erase + W);
    memcpy(bs->w_r, ws->w_read, (size_t)N * sizeof(float));
    memcpy(bs->w_w, ws->w_write, (size_t)N * sizeof(float));
    memcpy(hr_row + H, bs->r, (size_t)W * sizeof(float));
}

/* Block c for n sessions whose ws->z rows start with u: updates each state and leaves the
 * block outputs in the ws->o rows. */
static void block_step(const ntm_weights *w, int c, ntm_state *const *s, int n, ntm_workspace *ws) {
    const ntm_block_weights *b = &w->blocks[c];
    int W = w->cfg.width, H = w->cfg.hidden, P = w->cfg.proj, ldhr = H + W;
    tl_backend *be = w->be;
    lstm_step(w, c, s, n, ws);
    be->linear_reproducible(be, ws->read_out, W + 6, ws->hr, ldhr, b->read_w, b->read_b, n, H,
                            W + 6, 0);
    be->linear_reproducible(be, ws->write_out, 3 * W + 6, ws->hr, ldhr, b->write_w, b->write_b, n,
                            H, 3 * W + 6, 0);
    for (int i = 0; i < n; i++)
        memory_step(&w->cfg, &s[i]->blocks[c], row_of(ws->read_out, W + 6, i),
                    row_of(ws->write_out, 3 * W + 6, i), row_of(ws->hr, ldhr, i), ws);
    be->linear_reproducible(be, ws->o, P, ws->hr, ldhr, b->out_w, b->out_b, n, H + W, P, 0);
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

/* Turns of n ≤ NTM_BATCH_MAX sessions on x [n, P] through every block; trace (may be NULL)
 * records session 0. */
static void cascade_turns(const ntm_weights *w, ntm_state *const *s, const float *x, int n,
                          ntm_trace *trace) {
    const ntm_config *cfg = &w->cfg;
    int P = cfg->proj, ldz = 2 * P + cfg->width;
    ntm_workspace *ws = w->ws;
    for (int c = 0; c < cfg->blocks; c++) {
        for (int i = 0; i < n; i++) { /* u = x for block 0, [o^(c-1) ; x] after */
            float *z = row_of(ws->z, ldz, i);
            if (c > 0) memcpy(z, row_of(ws->o, P, i), (size_t)P * sizeof(float));
            memcpy(c > 0 ? z + P : z, x + (size_t)i * P, (size_t)P * sizeof(float));
        }
        block_step(w, c, s, n, ws);
        if (trace) trace_block(trace, cfg, c, &s[0]->blocks[c], ws->o);
    }
    for (int i = 0; i < n; i++) scaled_unit(row_of(ws->o, P, i), P, w->scale, s[i]->q);
}

static void decayed_sum_turn(const ntm_config *cfg, ntm_state *s, const float *x) {
    for (int i = 0; i < cfg->proj; i++) s->decayed_sum[i] = cfg->decay * s->decayed_sum[i] + x[i];
    scaled_unit(s->decayed_sum, cfg->proj, 1.0f, s->q);
}

/* One session's turn can run: its state fits w and x [P] is finite. */
static tl_status check_turn(const ntm_weights *w, const ntm_state *s, const float *x,
                            tl_error *err) {
    if (!s->values || !ntm_config_same_layout(&s->cfg, &w->cfg))
        return tl_fail(err, TL_ERR_INVALID, "session state does not match the model's NTM");
    for (int i = 0; i < w->cfg.proj; i++)
        if (!isfinite(x[i]))
            return tl_fail(err, TL_ERR_INVALID, "turn input x[%d] is not finite", i);
    return TL_OK;
}

static tl_status check_batch(const ntm_weights *w, ntm_state *const *states, const float *x, int n,
                             tl_error *err) {
    if (n <= 0) return tl_fail(err, TL_ERR_INVALID, "a batch of %d turns: at least 1 is needed", n);
    if (!states || !x)
        return tl_fail(err, TL_ERR_INVALID, "a batch of turns needs its states and inputs");
    for (int i = 0; i < n; i++) {
        if (!states[i])
            return tl_fail(err, TL_ERR_INVALID, "session %d of the batch of %d is NULL", i, n);
        tl_status st = check_turn(w, states[i], x + (size_t)i * w->cfg.proj, err);
        if (st) return n > 1 ? tl_error_prefix(err, "session %d of the batch of %d", i, n) : st;
        for (int j = 0; j < i; j++)
            if (states[j] == states[i])
                return tl_fail(err, TL_ERR_INVALID,
                               "sessions %d and %d of the batch are the same session (one turn "
                               "per session per batch)",
                               j, i);
    }
    return TL_OK;
}

/* ntm_turn and ntm_turn_batch: everything checked, then the cascade in passes of
 * NTM_BATCH_MAX sessions. */
static tl_status turn_sessions(const ntm_weights *w, ntm_state *const *states, const float *x,
                               int n, float *q_out, ntm_trace *trace, tl_error *err) {
    tl_status st = check_batch(w, states, x, n, err);
    if (st) return st;
    size_t P = (size_t)w->cfg.proj;
    for (int first = 0; first < n; first += NTM_BATCH_MAX) {
        int count = n - first < NTM_BATCH_MAX ? n - first : NTM_BATCH_MAX;
        if (w->cfg.kind == NTM_KIND_CASCADE)
            cascade_turns(w, states + first, x + first * P, count, trace);
        else
            for (int i = first; i < first + count; i++)
                decayed_sum_turn(&w->cfg, states[i], x + i * P);
    }
    for (int i = 0; i < n; i++) {
        states[i]->turns++;
        if (q_out) memmove(q_out + i * P, states[i]->q, P * sizeof(float));
    }
    return TL_OK;
}

tl_status ntm_turn(const ntm_weights *w, ntm_state *s, const float *x, float *q_out,
                   ntm_trace *trace, tl_error *err) {
    return turn_sessions(w, &s, x, 1, q_out, trace, err);
}

tl_status ntm_turn_batch(const ntm_weights *w, ntm_state *const *states, const float *x, int n,
                         float *q_out, tl_error *err) {
    return turn_sessions(w, states, x, n, q_out, NULL, err);
}
