/* session_memory.h over model/ntm.h and model/session_codec.h. */
#include "session_memory.h"

#include "session_codec.h"

tl_status session_memory_initial(const ntm_weights *w, uint8_t **bytes, size_t *len,
                                 tl_error *err) {
    ntm_state s = {0};
    tl_status st = ntm_state_alloc(&s, &w->cfg, err);
    if (!st) st = ntm_state_init(&s, w, err);
    if (!st) st = session_serialize(&s, NULL, bytes, len, err);
    ntm_state_release(&s);
    return st;
}

tl_status session_memory_turn(const ntm_weights *w, const uint8_t *state, size_t len,
                              const float *x, float *q, uint8_t **next, size_t *next_len,
                              tl_error *err) {
    ntm_state s = {0};
    tl_status st = session_deserialize(state, len, &w->cfg, &s, NULL, err);
    if (st == TL_ERR_INVALID) tl_error_prefix(err, "the session belongs to another model");
    if (!st) st = ntm_turn(w, &s, x, q, NULL, err);
    if (!st) st = session_serialize(&s, NULL, next, next_len, err);
    ntm_state_release(&s);
    return st;
}
