/* The memory step of a session turn over its stored bytes: decode the proto/session.md state,
 * run one NTM turn (model/ntm.h: the cascaded NTM, or the zero-shot decayed sum for checkpoints
 * without ntm.* tensors), encode the new state. Not for: keeping sessions (session_store.h) or
 * computing the turn input (query.h). */
#ifndef TAILORD_SESSION_MEMORY_H
#define TAILORD_SESSION_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "ntm.h"

/* The initial state of a new session for w, encoded in *bytes (caller frees) of *len. */
tl_status session_memory_initial(const ntm_weights *w, uint8_t **bytes, size_t *len, tl_error *err);

/* One turn on input x[P]: decodes state[len], steps it, writes the session query q[P] and the
 * new encoded state in *next (caller frees) of *next_len. A state made for another model
 * layout is TL_ERR_INVALID. Uses w's workspace: one turn at a time per w. */
tl_status session_memory_turn(const ntm_weights *w, const uint8_t *state, size_t len,
                              const float *x, float *q, uint8_t **next, size_t *next_len,
                              tl_error *err);

#endif
