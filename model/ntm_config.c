/* NTM configuration: config.json "tailor" → "ntm", the decayed-sum fallback's settings, and the
 * state size they imply. Not for: tensors (ntm_weights.c) or the turn itself (ntm.c). */
#include <stdio.h>

#include "ntm.h"

static tl_status check_dim(const char *what, long long v, tl_error *err) {
    if (v < 1 || v > NTM_MAX_DIM)
        return tl_fail(err, TL_ERR_INVALID, "%s must be an integer in 1..%d, got %lld", what,
                       NTM_MAX_DIM, v);
    return TL_OK;
}

static tl_status read_dim(const json_t *ntm, const char *key, int *out, tl_error *err) {
    const json_t *v = json_object_get(ntm, key);
    char what[64];
    snprintf(what, sizeof what, "config.json tailor.ntm.%s", key);
    if (!v) return tl_fail(err, TL_ERR_INVALID, "%s is missing", what);
    if (!json_is_integer(v)) return tl_fail(err, TL_ERR_INVALID, "%s is not an integer", what);
    tl_status st = check_dim(what, json_integer_value(v), err);
    if (st == TL_OK) *out = (int)json_integer_value(v);
    return st;
}

static tl_status check_state_size(const ntm_config *cfg, tl_error *err) {
    size_t n = ntm_state_floats(cfg);
    if (n > NTM_MAX_STATE_FLOATS)
        return tl_fail(err, TL_ERR_LIMIT, "NTM state of %zu floats exceeds the limit of %u", n,
                       NTM_MAX_STATE_FLOATS);
    return TL_OK;
}

tl_status ntm_config_parse(ntm_config *cfg, const json_t *ntm, int proj_dim, tl_error *err) {
    *cfg = (ntm_config){.kind = NTM_KIND_CASCADE};
    if (!json_is_object(ntm))
        return tl_fail(err, TL_ERR_INVALID, "config.json tailor.ntm is not an object");
    tl_status st = check_dim("projection_dim", proj_dim, err);
    if (st == TL_OK) st = read_dim(ntm, "blocks", &cfg->blocks, err);
    if (st == TL_OK) st = read_dim(ntm, "slots", &cfg->slots, err);
    if (st == TL_OK) st = read_dim(ntm, "width", &cfg->width, err);
    if (st == TL_OK) st = read_dim(ntm, "hidden", &cfg->hidden, err);
    cfg->proj = proj_dim;
    if (st == TL_OK) st = check_state_size(cfg, err);
    return st;
}

tl_status ntm_config_decayed_sum(ntm_config *cfg, int proj_dim, float decay, tl_error *err) {
    *cfg = (ntm_config){.kind = NTM_KIND_DECAYED_SUM, .proj = proj_dim, .decay = decay};
    if (!(decay >= 0.0f && decay <= 1.0f))
        return tl_fail(err, TL_ERR_INVALID, "session decay must be in [0, 1], got %g",
                       (double)decay);
    return check_dim("projection_dim", proj_dim, err);
}

size_t ntm_state_floats(const ntm_config *cfg) {
    size_t P = (size_t)cfg->proj;
    if (cfg->kind == NTM_KIND_DECAYED_SUM) return 2 * P; /* running sum, q */
    size_t N = (size_t)cfg->slots, W = (size_t)cfg->width, H = (size_t)cfg->hidden;
    size_t per_block = N * W + 2 * H + 2 * N + W; /* M, h, cell, w_r, w_w, r */
    return (size_t)cfg->blocks * per_block + P;
}

bool ntm_config_same_layout(const ntm_config *a, const ntm_config *b) {
    return a->kind == b->kind && a->blocks == b->blocks && a->slots == b->slots &&
           a->width == b->width && a->hidden == b->hidden && a->proj == b->proj;
}
