/* session_redis.h over hiredis's blocking API (loopback round trips well under a millisecond). */
#include "session_redis.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_PREFIX "tailor:session:"

struct session_redis {
    pthread_mutex_t lock;
    redisContext *ctx;
    long ttl_s;
    int db;
};

static tl_status parse_url(const char *url, char *host, size_t host_size, int *port, int *db,
                           tl_error *err) {
    *port = 6379;
    *db = 0;
    if (strncmp(url, "redis://", 8))
        return tl_fail(err, TL_ERR_INVALID, "'%s' is not redis://", url);
    const char *p = url + 8;
    size_t n = strcspn(p, ":/");
    if (n == 0 || n >= host_size) return tl_fail(err, TL_ERR_INVALID, "no host in '%s'", url);
    memcpy(host, p, n);
    host[n] = 0;
    p += n;
    if (*p == ':') *port = (int)strtol(p + 1, (char **)&p, 10);
    if (*p == '/') *db = (int)strtol(p + 1, (char **)&p, 10);
    if (*p || *port <= 0 || *port > 65535 || *db < 0)
        return tl_fail(err, TL_ERR_INVALID, "cannot parse '%s'", url);
    return TL_OK;
}

/* Selects the configured database on a fresh connection; -1 when that fails. */
static int select_db(session_redis *r) {
    if (!r->db) return 0;
    redisReply *reply = redisCommand(r->ctx, "SELECT %d", r->db);
    int ok = reply && reply->type == REDIS_REPLY_STATUS;
    if (reply) freeReplyObject(reply);
    return ok ? 0 : -1;
}

/* One command (argv form, binary-safe; lens NULL = C strings); reconnects once after a
 * connection error. The reply is the caller's (freeReplyObject), NULL when Redis cannot be
 * reached. Lock held. */
static redisReply *command(session_redis *r, int argc, const char **argv, const size_t *lens) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (r->ctx->err && (redisReconnect(r->ctx) != REDIS_OK || select_db(r))) continue;
        redisReply *reply = redisCommandArgv(r->ctx, argc, argv, lens);
        if (reply) return reply;
    }
    return NULL;
}

tl_status session_redis_open(session_redis **out, const char *url, long ttl_s, tl_error *err) {
    char host[256];
    int port, db;
    tl_status st = parse_url(url, host, sizeof host, &port, &db, err);
    if (st) return st;
    struct timeval timeout = {2, 0};
    redisContext *ctx = redisConnectWithTimeout(host, port, timeout);
    if (!ctx || ctx->err) {
        st = tl_fail(err, TL_ERR_IO, "cannot connect to %s: %s", url,
                     ctx ? ctx->errstr : "no memory");
        redisFree(ctx);
        return st;
    }
    redisSetTimeout(ctx, timeout);
    session_redis *r = calloc(1, sizeof *r);
    if (!r) {
        redisFree(ctx);
        return tl_fail(err, TL_ERR_NOMEM, "redis session store");
    }
    *r = (session_redis){.ctx = ctx, .ttl_s = ttl_s, .db = db};
    pthread_mutex_init(&r->lock, NULL);
    if (select_db(r)) {
        session_redis_close(r);
        return tl_fail(err, TL_ERR_IO, "%s: cannot select database %d", url, db);
    }
    *out = r;
    return TL_OK;
}

void session_redis_close(session_redis *r) {
    if (!r) return;
    redisFree(r->ctx);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static void session_key(const char *id, char *key, size_t size) {
    snprintf(key, size, KEY_PREFIX "%s", id);
}

/* HSET key state STATE meta META, then EXPIRE key ttl, in one MULTI/EXEC; lock held. */
static tl_status write_session(session_redis *r, const char *id, const uint8_t *state, size_t len,
                               json_t *meta, tl_error *err) {
    char key[96], ttl[32];
    session_key(id, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%ld", r->ttl_s);
    char *meta_text = json_dumps(meta, JSON_COMPACT);
    if (!meta_text) return tl_fail(err, TL_ERR_NOMEM, "session meta");
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *hset[] = {"HSET", key, "state", (const char *)state, "meta", meta_text};
    size_t hset_lens[] = {4, strlen(key), 5, len, 4, strlen(meta_text)};
    const char *expire[] = {"EXPIRE", key, ttl};
    size_t expire_lens[] = {6, strlen(key), strlen(ttl)};
    redisReply *replies[4] = {command(r, 1, multi, NULL), command(r, 6, hset, hset_lens),
                              command(r, 3, expire, expire_lens), command(r, 1, exec, NULL)};
    int ok = replies[3] && replies[3]->type == REDIS_REPLY_ARRAY;
    for (int i = 0; i < 4; i++)
        if (replies[i]) freeReplyObject(replies[i]);
    free(meta_text);
    return ok ? TL_OK
              : tl_fail(err, TL_ERR_IO, "redis: %s",
                        r->ctx->err ? r->ctx->errstr : "write refused");
}

tl_status session_redis_create(session_redis *r, const char *id, const uint8_t *state, size_t len,
                               int64_t created_at, tl_error *err) {
    json_t *meta = json_pack("{s:I, s:i, s:[]}", "created_at", (json_int_t)created_at, "turn_count",
                             0, "turns");
    pthread_mutex_lock(&r->lock);
    tl_status st = write_session(r, id, state, len, meta, err);
    pthread_mutex_unlock(&r->lock);
    json_decref(meta);
    return st;
}

/* Reads field of session id and refreshes its TTL; the reply (string) or NULL; lock held. */
static redisReply *read_field(session_redis *r, const char *id, const char *field) {
    char key[96], ttl[32];
    session_key(id, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%ld", r->ttl_s);
    const char *expire[] = {"EXPIRE", key, ttl};
    redisReply *touched = command(r, 3, expire, NULL);
    if (touched) freeReplyObject(touched);
    const char *hget[] = {"HGET", key, field};
    redisReply *reply = command(r, 3, hget, NULL);
    if (reply && reply->type == REDIS_REPLY_STRING) return reply;
    if (reply) freeReplyObject(reply);
    return NULL;
}

/* The session's meta object; NULL when absent; lock held. */
static json_t *read_meta(session_redis *r, const char *id) {
    redisReply *reply = read_field(r, id, "meta");
    json_t *meta = reply ? json_loadb(reply->str, reply->len, 0, NULL) : NULL;
    if (reply) freeReplyObject(reply);
    return json_is_object(meta) ? meta : (json_decref(meta), NULL);
}

json_t *session_redis_describe(session_redis *r, const char *id) {
    pthread_mutex_lock(&r->lock);
    json_t *meta = read_meta(r, id);
    pthread_mutex_unlock(&r->lock);
    if (!meta) return NULL;
    json_t *out = json_pack(
        "{s:s, s:O, s:I, s:O, s:O}", "session_id", id, "created_at",
        json_object_get(meta, "created_at"), "expires_at", (json_int_t)(time(NULL) + r->ttl_s),
        "turn_count", json_object_get(meta, "turn_count"), "turns", json_object_get(meta, "turns"));
    json_decref(meta);
    return out;
}

tl_status session_redis_state(session_redis *r, const char *id, uint8_t **state, size_t *len,
                              tl_error *err) {
    *state = NULL;
    pthread_mutex_lock(&r->lock);
    redisReply *reply = read_field(r, id, "state");
    pthread_mutex_unlock(&r->lock);
    if (!reply) return tl_fail(err, TL_ERR_NOT_FOUND, "no session %s", id);
    *state = malloc(reply->len ? reply->len : 1);
    if (*state) memcpy(*state, reply->str, reply->len);
    *len = reply->len;
    freeReplyObject(reply);
    return *state ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "session state");
}

tl_status session_redis_add_turn(session_redis *r, const char *id, const uint8_t *state, size_t len,
                                 json_t *turn, tl_error *err) {
    pthread_mutex_lock(&r->lock);
    json_t *meta = read_meta(r, id);
    tl_status st = meta ? TL_OK : tl_fail(err, TL_ERR_NOT_FOUND, "no session %s", id);
    if (!st) {
        json_int_t count = json_integer_value(json_object_get(meta, "turn_count")) + 1;
        json_object_set_new(meta, "turn_count", json_integer(count));
        json_object_set_new(turn, "turn", json_integer(count));
        json_t *turns = json_object_get(meta, "turns");
        json_array_append(turns, turn);
        while (json_array_size(turns) > 64) json_array_remove(turns, 0);
        st = write_session(r, id, state, len, meta, err);
    }
    pthread_mutex_unlock(&r->lock);
    json_decref(meta);
    json_decref(turn);
    return st;
}

int session_redis_delete(session_redis *r, const char *id) {
    char key[96];
    session_key(id, key, sizeof key);
    const char *del[] = {"DEL", key};
    pthread_mutex_lock(&r->lock);
    redisReply *reply = command(r, 2, del, NULL);
    pthread_mutex_unlock(&r->lock);
    int deleted = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
    if (reply) freeReplyObject(reply);
    return deleted ? 0 : -1;
}

long session_redis_count(session_redis *r) {
    const char *count[] = {"EVAL", "return #redis.call('KEYS', ARGV[1])", "0", KEY_PREFIX "*"};
    pthread_mutex_lock(&r->lock);
    redisReply *reply = command(r, 4, count, NULL);
    pthread_mutex_unlock(&r->lock);
    long n = reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : -1;
    if (reply) freeReplyObject(reply);
    return n;
}
