/* Multi-turn search sessions held in process: each session keeps its memory state as opaque
 * bytes (the proto/session.md encoding, made and read by the caller) and the list of its
 * turns. Bounded by count and bytes (least recently used evicted first) and by an idle TTL;
 * snapshots to a file and back. Thread-safe (one mutex).
 * With a Redis URL the same operations go to Redis instead (session_redis.h), for replicas
 * sharing sessions. Not for: stepping the memory (model/ntm.h). */
#ifndef TAILORD_SESSION_STORE_H
#define TAILORD_SESSION_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SESSION_ID_LEN         32 /* hex characters */
#define SESSION_MAX_TURNS_KEPT 64

typedef struct session_store session_store;

session_store *session_store_create(long max_count, size_t max_bytes, long ttl_s);
/* A store kept in Redis at url (session_redis.h): count and bytes bounds do not apply (Redis
 * has its own maxmemory), expiry is Redis's, snapshots are not needed. */
tl_status session_store_open_redis(session_store **out, const char *url, long ttl_s, tl_error *err);
void session_store_free(session_store *st);

/* 1 when id has the form of a session id (32 lower-case hex characters). */
int session_id_valid(const char *id);

/* Creates a session holding state[len] (copied); writes its id (SESSION_ID_LEN + 1 bytes) and
 * expiry (unix seconds). Evicts least recently used sessions to make room. */
tl_status session_store_create_session(session_store *st, const uint8_t *state, size_t len,
                                       char *id_out, int64_t *expires_at, tl_error *err);

/* {"session_id", "created_at", "expires_at", "turn_count", "turns": [...]} of session id,
 * refreshing its TTL; NULL when there is no such session. New reference. */
json_t *session_store_describe(session_store *st, const char *id);

/* A copy of the session's state in *state (caller frees) of *len bytes. TL_ERR_NOT_FOUND when
 * the session does not exist. */
tl_status session_store_state(session_store *st, const char *id, uint8_t **state, size_t *len,
                              tl_error *err);

/* Records a turn: the new state[len] (copied) and turn (reference stolen; its "turn" field is
 * set here to the turn's 1-based number). */
tl_status session_store_add_turn(session_store *st, const char *id, const uint8_t *state,
                                 size_t len, json_t *turn, tl_error *err);

/* 0 when removed, -1 when there was no such session. */
int session_store_delete(session_store *st, const char *id);

/* Removes sessions idle past their TTL; returns how many. */
long session_store_expire(session_store *st);
void session_store_stats(session_store *st, long *count, size_t *bytes);

/* Writes every live session to path atomically (temp file + rename), as JSON lines. */
tl_status session_store_save(session_store *st, const char *path, tl_error *err);
/* Restores sessions from a file written by session_store_save; a missing file is no error.
 * Expired sessions are skipped. *n_loaded (may be NULL) counts those restored. */
tl_status session_store_load(session_store *st, const char *path, long *n_loaded, tl_error *err);

#endif
