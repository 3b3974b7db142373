/* A session's memory state: one flat float buffer carved into per-block views, and its reset to
 * the learned initial state. Not for: stepping it (ntm.c) or encoding it (session_codec.c). */
#include <stdlib.h>
#include <string.h>

#include "ntm.h"

/* Points each block's views into s->values in the order of ntm.h. */
static void carve_blocks(ntm_state *s) {
    size_t N = (size_t)s->cfg.slots, W = (size_t)s->cfg.width, H = (size_t)s->cfg.hidden;
    float *p = s->values;
    for (int c = 0; c < s->cfg.blocks; c++) {
        ntm_block_state *b = &s->blocks[c];
        b->M = p, p += N * W;
        b->h = p, p += H;
        b->cell = p, p += H;
        b->w_r = p, p += N;
        b->w_w = p, p += N;
        b->r = p, p += W;
    }
    s->q = p;
}

tl_status ntm_state_alloc(ntm_state *s, const ntm_config *cfg, tl_error *err) {
    *s = (ntm_state){.cfg = *cfg, .n_values = ntm_state_floats(cfg)};
    if (s->n_values > NTM_MAX_STATE_FLOATS)
        return tl_fail(err, TL_ERR_LIMIT, "NTM state of %zu floats exceeds the limit of %u",
                       s->n_values, NTM_MAX_STATE_FLOATS);
    s->values = calloc(s->n_values, sizeof *s->values);
    if (!s->values) return tl_fail(err, TL_ERR_NOMEM, "out of memory for an NTM state");
    if (cfg->kind == NTM_KIND_DECAYED_SUM) {
        s->decayed_sum = s->values;
        s->q = s->values + cfg->proj;
        return TL_OK;
    }
    s->blocks = calloc((size_t)cfg->blocks, sizeof *s->blocks);
    if (!s->blocks) {
        ntm_state_release(s);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for an NTM state");
    }
    carve_blocks(s);
    return TL_OK;
}

void ntm_state_release(ntm_state *s) {
    free(s->values);
    free(s->blocks);
    *s = (ntm_state){0};
}

tl_status ntm_state_init(ntm_state *s, const ntm_weights *w, tl_error *err) {
    if (!s->values || !ntm_config_same_layout(&s->cfg, &w->cfg))
        return tl_fail(err, TL_ERR_INVALID,
                       "NTM state was not allocated for this model's configuration");
    memset(s->values, 0, s->n_values * sizeof *s->values);
    s->turns = 0;
    size_t N = (size_t)s->cfg.slots, W = (size_t)s->cfg.width;
    for (int c = 0; c < s->cfg.blocks; c++) {
        memcpy(s->blocks[c].M, w->blocks[c].mem_init, N * W * sizeof(float));
        memcpy(s->blocks[c].r, w->blocks[c].read_init, W * sizeof(float));
    }
    return TL_OK;
}
