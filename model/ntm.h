/* Multi-turn session memory: FashionNTM's cascaded-memory NTM (MODEL.md §3) and, for checkpoints
 * without ntm.* tensors, the zero-shot decayed sum of proto/session.md, behind one turn API.
 * Not for: computing the turn inputs x_t (the TGIR fusion) or ranking; callers do those. */
#ifndef TL_NTM_H
#define TL_NTM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "error.h"
#include "safetensors.h"

/* Limits on every dimension and on a state's size, so corrupt configs and sessions are refused
 * before any allocation. The real model (C = 8, N = 8, W = H = P = 512) is far below them. */
#define NTM_MAX_DIM          65536
#define NTM_MAX_STATE_FLOATS (64u << 20)

/* Sessions stepped together per pass over the weights; larger batches run in passes of this
 * many. The workspace holds this many sessions' scratch (about 28 KB each at the real size). */
#define NTM_BATCH_MAX 64

typedef enum ntm_kind {
    NTM_KIND_CASCADE = 1,     /* CM-NTM with trained ntm.* weights */
    NTM_KIND_DECAYED_SUM = 2, /* zero-shot fallback: q = n(Σ decay^(T−1−t) x_t) */
} ntm_kind;

typedef struct ntm_config {
    ntm_kind kind;
    int blocks;  /* C (0 for the decayed sum) */
    int slots;   /* N (0 for the decayed sum) */
    int width;   /* W (0 for the decayed sum) */
    int hidden;  /* H (0 for the decayed sum) */
    int proj;    /* P: width of x_t and q_t */
    float decay; /* decayed sum only; 0 for the cascade */
} ntm_config;

/* Reads config.json "tailor" → "ntm" ({"blocks", "slots", "width", "hidden"}, positive integers)
 * for projection width proj_dim. ntm is borrowed. Errors are TL_ERR_INVALID naming the key. */
tl_status ntm_config_parse(ntm_config *cfg, const json_t *ntm, int proj_dim, tl_error *err);

/* The zero-shot fallback's configuration: 0 <= decay <= 1 (proto/session.md uses 0.5). */
tl_status ntm_config_decayed_sum(ntm_config *cfg, int proj_dim, float decay, tl_error *err);

/* Whether a and b have the same kind and dimensions (the decay may differ). */
bool ntm_config_same_layout(const ntm_config *a, const ntm_config *b);

/* Floats in a state of this configuration (ntm_state.values). */
size_t ntm_state_floats(const ntm_config *cfg);

/* Whether f holds the NTM capability. *present = false when no tensor starts with "ntm.";
 * otherwise every tensor of cfg must be there: the first missing one is TL_ERR_NOT_FOUND, and an
 * ntm.* tensor cfg does not name (or cfg == NULL, config.json without "ntm") is TL_ERR_FORMAT. */
tl_status ntm_tensors_detect(const st_file *f, const ntm_config *cfg, bool *present, tl_error *err);

typedef struct ntm_block_weights {
    int in_dim;             /* width of u: P for block 0, 2P after */
    const float *lstm_w_ih; /* [4H, in + W], gates i, f, g, o */
    const float *lstm_w_hh; /* [4H, H] */
    const float *lstm_b_ih; /* [4H] */
    const float *lstm_b_hh; /* [4H] */
    const float *read_w;    /* [W + 6, H] */
    const float *read_b;    /* [W + 6] */
    const float *write_w;   /* [3W + 6, H] */
    const float *write_b;   /* [3W + 6] */
    const float *out_w;     /* [P, H + W] */
    const float *out_b;     /* [P] */
    const float *mem_init;  /* [N, W] */
    const float *read_init; /* [W] */
} ntm_block_weights;

/* Scratch for the turns of up to NTM_BATCH_MAX sessions, sized for a configuration (ntm.c). */
typedef struct ntm_workspace ntm_workspace;

/* Returns a workspace for cfg owned by the caller (free with ntm_workspace_free), or NULL when
 * out of memory. */
ntm_workspace *ntm_workspace_create(const ntm_config *cfg);
void ntm_workspace_free(ntm_workspace *ws);

typedef struct ntm_weights {
    ntm_config cfg;
    ntm_block_weights *blocks; /* [C], owned; NULL for the decayed sum */
    float scale;               /* ntm.scale (σ_ntm) */
    tl_backend *be;            /* borrowed: runs the cascade's products; NULL for the decayed sum */
    ntm_workspace *ws;         /* turn scratch, owned: one turn (or batch) at a time */
} ntm_weights;

/* Binds every ntm.* tensor of cfg in f with exact shape checks (errors name the tensor) and
 * sizes the turn workspace; the cascade's products run on be (required for it). For the decayed
 * sum f and be are not used and may be NULL. The tensors stay owned by f and the backend by its
 * creator; both must outlive w. Release w with ntm_weights_release. */
tl_status ntm_weights_bind(ntm_weights *w, st_file *f, const ntm_config *cfg, tl_backend *be,
                           tl_error *err);
void ntm_weights_release(ntm_weights *w);

typedef struct ntm_block_state {
    float *M;    /* [N, W] memory */
    float *h;    /* [H] LSTM hidden */
    float *cell; /* [H] LSTM cell */
    float *w_r;  /* [N] previous read weights */
    float *w_w;  /* [N] previous write weights */
    float *r;    /* [W] previous read vector */
} ntm_block_state;

/* Everything a turn reads: `values` is one flat allocation carved, in this order, into each
 * block's M, h, cell, w_r, w_w, r (cascade) or the running sum [P] (decayed sum), then q [P]. */
typedef struct ntm_state {
    ntm_config cfg;
    uint64_t turns; /* turns taken */
    float *values;  /* [n_values], owned */
    size_t n_values;
    ntm_block_state *blocks; /* [C], owned, views into values; NULL for the decayed sum */
    float *decayed_sum;      /* [P] view; NULL for the cascade */
    float *q;                /* [P] view: the last q_t (zeros before the first turn) */
} ntm_state;

/* Allocates s for cfg with every value zero and no turns. Release with ntm_state_release
 * (also safe on a zeroed or failed state). */
tl_status ntm_state_alloc(ntm_state *s, const ntm_config *cfg, tl_error *err);
void ntm_state_release(ntm_state *s);

/* Resets s (allocated for w's configuration) to the initial state: M = mem_init,
 * r = read_init, h = cell = w_r = w_w = 0, q = 0, no turns; the decayed sum = 0. */
tl_status ntm_state_init(ntm_state *s, const ntm_weights *w, tl_error *err);

/* Optional per-block values of one turn, for tests; every pointer may be NULL. */
typedef struct ntm_trace {
    float *block_outputs; /* [C, P] o^c */
    float *read_weights;  /* [C, N] w_r after the turn */
    float *write_weights; /* [C, N] w_w after the turn */
    float *read_vectors;  /* [C, W] r read this turn */
} ntm_trace;

/* One turn: steps every block on x [P] (used as given, not renormalised) and writes
 * q_out [P] (= s->q; q_out may be NULL): σ_ntm·n(o^C) for the cascade, n(running sum) for the
 * decayed sum. Allocates nothing. The same as ntm_turn_batch with n = 1, plus the trace. */
tl_status ntm_turn(const ntm_weights *w, ntm_state *s, const float *x, float *q_out,
                   ntm_trace *trace, tl_error *err);

/* One turn each for n distinct sessions: states[i] steps on x[i·P, (i+1)·P) and q_out[i·P, ..)
 * receives its q (q_out may be NULL). The products read each weight once per NTM_BATCH_MAX
 * sessions, and every session's result is bit for bit what ntm_turn gives it alone, whatever
 * n, its place in the batch or the thread count. Everything is checked first: on an error
 * (n ≤ 0, a NULL, a state of another layout, a session twice, a non-finite x) no state
 * changes. Allocates nothing. */
tl_status ntm_turn_batch(const ntm_weights *w, ntm_state *const *states, const float *x, int n,
                         float *q_out, tl_error *err);

#endif
