/* Sessions in Redis (hiredis), so that several tailord replicas serve one shop and any of them
 * can take any turn. One hash per session, key "tailor:session:ID": field "state" holds the
 * proto/session.md bytes, field "meta" a JSON object {created_at, turn_count, turns}; Redis
 * expires the key after the TTL, refreshed on every use. One connection behind a mutex,
 * reconnected after an error. Concurrent turns on one session from two replicas: the last
 * write wins. Not for: the in-process store (session_store.c, which dispatches here). */
#ifndef TAILORD_SESSION_REDIS_H
#define TAILORD_SESSION_REDIS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct session_redis session_redis;

/* Connects to url (redis://HOST:PORT[/DB]). *out is owned by the caller. */
tl_status session_redis_open(session_redis **out, const char *url, long ttl_s, tl_error *err);
void session_redis_close(session_redis *r);

/* The operations of session_store.h, same contracts. */
tl_status session_redis_create(session_redis *r, const char *id, const uint8_t *state, size_t len,
                               int64_t created_at, tl_error *err);
json_t *session_redis_describe(session_redis *r, const char *id);
tl_status session_redis_state(session_redis *r, const char *id, uint8_t **state, size_t *len,
                              tl_error *err);
tl_status session_redis_add_turn(session_redis *r, const char *id, const uint8_t *state, size_t len,
                                 json_t *turn, tl_error *err);
int session_redis_delete(session_redis *r, const char *id);
/* Sessions stored (keys matching tailor:session:*), or -1 when Redis cannot be reached. */
long session_redis_count(session_redis *r);

#endif
