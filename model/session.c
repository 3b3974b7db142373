/* The public multi-turn session API of tailor_model.h: loads a model's session memory (trained
 * CM-NTM or the decayed-sum fallback), steps sessions turn by turn, keeps the shown ids and the
 * expiry, and (de)serialises. Not for: the NTM arithmetic (ntm.c), the byte layout
 * (session_codec.c) or ranking a gallery (callers). */
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "session_codec.h"

#define DEFAULT_SESSION_DECAY 0.5f

struct tl_session {
    ntm_state state;
    session_meta meta; /* shown_ids owned, shown_cap slots allocated */
    size_t shown_cap;
};

/* ---- the model's session memory ---- */

/* The session memory configuration of m: config.json tailor.ntm when the checkpoint holds the
 * ntm.* tensors, else the decayed sum. */
static tl_status session_memory_config(const tl_model *m, const tl_model_opts *opts,
                                       ntm_config *cfg, tl_error *err) {
    int P = m->cfg.projection_dim;
    const json_t *ntm = m->cfg.tailor ? json_object_get(m->cfg.tailor, "ntm") : NULL;
    bool present = false;
    tl_status st = ntm ? ntm_config_parse(cfg, ntm, P, err) : TL_OK;
    if (!st) st = ntm_tensors_detect(m->st, ntm ? cfg : NULL, &present, err);
    if (st || present) return st;
    float decay = opts && opts->session_decay != 0.0f ? opts->session_decay : DEFAULT_SESSION_DECAY;
    return ntm_config_decayed_sum(cfg, P, decay, err);
}

tl_status session_memory_open(tl_model *m, const tl_model_opts *opts, tl_error *err) {
    ntm_config cfg;
    tl_status st = session_memory_config(m, opts, &cfg, err);
    if (st) return st;
    ntm_weights *w = calloc(1, sizeof *w);
    if (!w) return tl_fail(err, TL_ERR_NOMEM, "out of memory for the session memory");
    st = ntm_weights_bind(w, m->st, &cfg, m->be, err);
    if (st) {
        free(w);
        return st;
    }
    m->ntm = w;
    return TL_OK;
}

void session_memory_close(tl_model *m) {
    if (!m->ntm) return;
    ntm_weights_release(m->ntm);
    free(m->ntm);
    m->ntm = NULL;
}

const char *tl_capability_name(unsigned cap) {
    if (cap == TL_CAP_NTM) return "ntm";
    for (int t = 0; t < TL_TASK_COUNT; t++)
        if (cap == 1u << t) return tl_task_name(t);
    return NULL;
}

/* ---- sessions ---- */

/* *out owned by the caller (tl_session_free). */
tl_status tl_session_create(tl_model *m, const tl_session_opts *opts, tl_session **out,
                            tl_error *err) {
    *out = NULL;
    tl_session *s = calloc(1, sizeof *s);
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "out of memory for a session");
    tl_status st = ntm_state_alloc(&s->state, &m->ntm->cfg, err);
    if (!st) st = ntm_state_init(&s->state, m->ntm, err);
    if (st) {
        tl_session_free(s);
        return st;
    }
    if (opts) tl_session_set_expiry(s, opts->expires_at);
    *out = s;
    return TL_OK;
}

void tl_session_free(tl_session *s) {
    if (!s) return;
    ntm_state_release(&s->state);
    session_meta_release(&s->meta);
    free(s);
}

tl_status tl_session_turn_vec(tl_model *m, tl_session *s, const float *x, float *query_out,
                              tl_error *err) {
    if (!s || !x) return tl_fail(err, TL_ERR_INVALID, "session turn: session and x are needed");
    tl_status st = ntm_turn(m->ntm, &s->state, x, query_out, NULL, err);
    if (st) tl_error_prefix(err, "session turn %llu", (unsigned long long)s->state.turns + 1);
    return st;
}

tl_status tl_session_turn_vec_batch(tl_model *m, tl_session *const *sessions, const float *x, int n,
                                    float *query_out, tl_error *err) {
    if (n <= 0) return tl_fail(err, TL_ERR_INVALID, "session turn batch: %d sessions", n);
    if (!sessions || !x)
        return tl_fail(err, TL_ERR_INVALID, "session turn batch: sessions and x are needed");
    ntm_state **states = malloc((size_t)n * sizeof *states);
    if (!states) return tl_fail(err, TL_ERR_NOMEM, "out of memory for %d session turns", n);
    for (int i = 0; i < n; i++) states[i] = sessions[i] ? &sessions[i]->state : NULL;
    tl_status st = ntm_turn_batch(m->ntm, states, x, n, query_out, err);
    if (st) tl_error_prefix(err, "session turn batch");
    free(states);
    return st;
}

tl_status tl_session_turn(tl_model *m, tl_session *s, const tl_image *reference, const char *text,
                          float *query_out, tl_error *err) {
    if (!s || !reference || !text)
        return tl_fail(err, TL_ERR_INVALID, "session turn: session, image and text are needed");
    float *x = malloc((size_t)m->info.projection_dim * sizeof *x);
    if (!x) return tl_fail(err, TL_ERR_NOMEM, "out of memory for a session turn");
    tl_status st = tl_compose(m, reference, &text, 1, x, err);
    if (st)
        tl_error_prefix(err, "session turn %llu", (unsigned long long)s->state.turns + 1);
    else
        st = tl_session_turn_vec(m, s, x, query_out, err);
    free(x);
    return st;
}

uint64_t tl_session_turn_count(const tl_session *s) {
    return s->state.turns;
}

const float *tl_session_query(const tl_session *s) {
    return s->state.q;
}

/* ---- shown ids and expiry ---- */

tl_status tl_session_add_shown(tl_session *s, const uint64_t *ids, size_t n, tl_error *err) {
    session_meta *meta = &s->meta;
    if (n > SESSION_MAX_SHOWN_IDS - meta->n_shown)
        return tl_fail(err, TL_ERR_LIMIT, "%zu shown ids + %zu exceed the limit of %u",
                       meta->n_shown, n, SESSION_MAX_SHOWN_IDS);
    if (n && !ids) return tl_fail(err, TL_ERR_INVALID, "shown ids: NULL list of %zu", n);
    if (meta->n_shown + n > s->shown_cap) {
        size_t cap = s->shown_cap ? 2 * s->shown_cap : 16;
        while (cap < meta->n_shown + n) cap *= 2;
        uint64_t *grown = realloc(meta->shown_ids, cap * sizeof *grown);
        if (!grown) return tl_fail(err, TL_ERR_NOMEM, "out of memory for %zu shown ids", cap);
        meta->shown_ids = grown;
        s->shown_cap = cap;
    }
    if (n) memcpy(meta->shown_ids + meta->n_shown, ids, n * sizeof *ids);
    meta->n_shown += n;
    return TL_OK;
}

size_t tl_session_shown(const tl_session *s, const uint64_t **ids) {
    *ids = s->meta.shown_ids;
    return s->meta.n_shown;
}

void tl_session_set_expiry(tl_session *s, int64_t expires_at) {
    s->meta.has_expiry = expires_at != 0;
    s->meta.expires_at = expires_at;
}

int64_t tl_session_expiry(const tl_session *s) {
    return s->meta.has_expiry ? s->meta.expires_at : 0;
}

/* ---- bytes ---- */

/* *bytes malloc'd, owned by the caller. */
tl_status tl_session_serialize(const tl_model *m, const tl_session *s, uint8_t **bytes, size_t *len,
                               tl_error *err) {
    *bytes = NULL;
    *len = 0;
    if (!ntm_config_same_layout(&s->state.cfg, &m->ntm->cfg))
        return tl_fail(err, TL_ERR_INVALID, "session does not belong to this model");
    return session_serialize(&s->state, &s->meta, bytes, len, err);
}

/* *out owned by the caller (tl_session_free). */
tl_status tl_session_restore(const tl_model *m, const uint8_t *bytes, size_t len, tl_session **out,
                             tl_error *err) {
    *out = NULL;
    if (!bytes) return tl_fail(err, TL_ERR_INVALID, "session bytes: NULL");
    tl_session *s = calloc(1, sizeof *s);
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "out of memory for a session");
    tl_status st = session_deserialize(bytes, len, &m->ntm->cfg, &s->state, &s->meta, err);
    if (st) {
        free(s);
        return st;
    }
    s->shown_cap = s->meta.n_shown;
    *out = s;
    return TL_OK;
}
