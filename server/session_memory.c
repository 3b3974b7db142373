/* session_memory.h over the public session API of model/tailor_model.h. */
#include "session_memory.h"

tl_status session_memory_initial(tl_model *m, uint8_t **bytes, size_t *len, tl_error *err) {
    tl_session *s = NULL;
    tl_status st = tl_session_create(m, NULL, &s, err);
    if (!st) st = tl_session_serialize(m, s, bytes, len, err);
    tl_session_free(s);
    return st;
}

tl_status session_memory_turn(tl_model *m, const uint8_t *state, size_t len, const float *x,
                              float *q, uint8_t **next, size_t *next_len, tl_error *err) {
    tl_session *s = NULL;
    tl_status st = tl_session_restore(m, state, len, &s, err);
    if (st == TL_ERR_INVALID) tl_error_prefix(err, "the session belongs to another model");
    if (!st) st = tl_session_turn_vec(m, s, x, q, err);
    if (!st) st = tl_session_serialize(m, s, next, next_len, err);
    tl_session_free(s);
    return st;
}
