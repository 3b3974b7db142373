/* The memory step of session turns over their stored bytes: restore the proto/session.md
 * sessions, step them together (tl_session_turn_vec_batch: the checkpoint's trained CM-NTM when
 * it has TL_CAP_NTM, the zero-shot decayed sum otherwise), serialise the new states. Not for:
 * keeping sessions (session_store.h) or computing the turn input (query.h). */
#ifndef TAILORD_SESSION_MEMORY_H
#define TAILORD_SESSION_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "tailor_model.h"

/* The initial state of a new session for m, encoded in *bytes (caller frees) of *len. Reads
 * only m's configuration: safe beside the model's thread. */
tl_status session_memory_initial(tl_model *m, uint8_t **bytes, size_t *len, tl_error *err);

/* One turn of a batch: its stored state and input, then its results. */
typedef struct session_memory_turn_io {
    uint8_t *state; /* in: the stored state, len bytes (the caller's) */
    size_t len;
    float *x;      /* in: [P] */
    float *q;      /* out: [P] the session query */
    uint8_t *next; /* out: the new state (caller frees; NULL on error), next_len bytes */
    size_t next_len;
    tl_error err; /* out: TL_OK or this turn's error */
} session_memory_turn_io;

/* Steps the n turns (of n different sessions) together; each gets its own result or error (a
 * state made for another model configuration is TL_ERR_INVALID), the others step regardless.
 * On the model's thread only. */
void session_memory_turns(tl_model *m, session_memory_turn_io *const *turns, int n);

#endif
