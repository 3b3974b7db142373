/* The memory step of a session turn over its stored bytes: restore the proto/session.md
 * session, run one turn (tl_session_turn_vec: the checkpoint's trained CM-NTM when it has
 * TL_CAP_NTM, the zero-shot decayed sum otherwise), serialise the new state. Not for: keeping
 * sessions (session_store.h) or computing the turn input (query.h). */
#ifndef TAILORD_SESSION_MEMORY_H
#define TAILORD_SESSION_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "tailor_model.h"

/* The initial state of a new session for m, encoded in *bytes (caller frees) of *len. Reads
 * only m's configuration: safe beside the model's thread. */
tl_status session_memory_initial(tl_model *m, uint8_t **bytes, size_t *len, tl_error *err);

/* One turn on input x[P]: restores state[len], steps it, writes the session query q[P] and the
 * new encoded state in *next (caller frees) of *next_len. A state made for another model
 * configuration is TL_ERR_INVALID. On the model's thread only. */
tl_status session_memory_turn(tl_model *m, const uint8_t *state, size_t len, const float *x,
                              float *q, uint8_t **next, size_t *next_len, tl_error *err);

#endif
