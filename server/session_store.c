/* session_store.h: a chained hash table of sessions by id, a doubly linked LRU list (head =
 * most recent), and byte accounting of each session's embedding and turn records. */
#include "session_store.h"

#include "base64.h"
#include "session_redis.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct session {
    char id[SESSION_ID_LEN + 1];
    int64_t created_at, last_used;
    int turn_count;
    uint8_t *state; /* proto/session.md bytes */
    size_t state_len;
    json_t *turns; /* the last SESSION_MAX_TURNS_KEPT turn records */
    size_t bytes;
    struct session *bucket_next, *lru_prev, *lru_next;
} session;

struct session_store {
    pthread_mutex_t lock;
    session **buckets;
    size_t n_buckets;
    session *lru_head, *lru_tail;
    long count, max_count, ttl_s;
    size_t bytes, max_bytes;
    session_redis *redis; /* when set, every operation goes there */
};

static int64_t now_s(void) {
    return (int64_t)time(NULL);
}

static size_t hash_text(const char *s) {
    size_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

session_store *session_store_create(long max_count, size_t max_bytes, long ttl_s) {
    session_store *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->n_buckets = 1024;
    while (st->n_buckets < (size_t)max_count && st->n_buckets < (1u << 20)) st->n_buckets *= 2;
    st->buckets = calloc(st->n_buckets, sizeof *st->buckets);
    if (!st->buckets) {
        free(st);
        return NULL;
    }
    st->max_count = max_count;
    st->max_bytes = max_bytes;
    st->ttl_s = ttl_s;
    pthread_mutex_init(&st->lock, NULL);
    return st;
}

static void session_free(session *s) {
    free(s->state);
    json_decref(s->turns);
    free(s);
}

tl_status session_store_open_redis(session_store **out, const char *url, long ttl_s,
                                   tl_error *err) {
    *out = session_store_create(1, 1, ttl_s);
    if (!*out) return tl_fail(err, TL_ERR_NOMEM, "session store");
    tl_status st = session_redis_open(&(*out)->redis, url, ttl_s, err);
    if (st) {
        session_store_free(*out);
        *out = NULL;
    }
    return st;
}

void session_store_free(session_store *st) {
    if (!st) return;
    session_redis_close(st->redis);
    for (session *s = st->lru_head, *next; s; s = next) {
        next = s->lru_next;
        session_free(s);
    }
    free(st->buckets);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

int session_id_valid(const char *id) {
    return id && strlen(id) == SESSION_ID_LEN && strspn(id, "0123456789abcdef") == SESSION_ID_LEN;
}

/* ---- table and list; lock held ---- */

static session *find(session_store *st, const char *id) {
    if (!session_id_valid(id)) return NULL;
    for (session *s = st->buckets[hash_text(id) & (st->n_buckets - 1)]; s; s = s->bucket_next)
        if (!strcmp(s->id, id)) return s;
    return NULL;
}

static void lru_unlink(session_store *st, session *s) {
    if (s->lru_prev)
        s->lru_prev->lru_next = s->lru_next;
    else
        st->lru_head = s->lru_next;
    if (s->lru_next)
        s->lru_next->lru_prev = s->lru_prev;
    else
        st->lru_tail = s->lru_prev;
    s->lru_prev = s->lru_next = NULL;
}

static void lru_push_front(session_store *st, session *s) {
    s->lru_next = st->lru_head;
    if (st->lru_head) st->lru_head->lru_prev = s;
    st->lru_head = s;
    if (!st->lru_tail) st->lru_tail = s;
}

static void touch(session_store *st, session *s) {
    s->last_used = now_s();
    lru_unlink(st, s);
    lru_push_front(st, s);
}

static void insert(session_store *st, session *s) {
    size_t b = hash_text(s->id) & (st->n_buckets - 1);
    s->bucket_next = st->buckets[b];
    st->buckets[b] = s;
    lru_push_front(st, s);
    st->count++;
    st->bytes += s->bytes;
}

static void remove_session(session_store *st, session *s) {
    session **link = &st->buckets[hash_text(s->id) & (st->n_buckets - 1)];
    while (*link != s) link = &(*link)->bucket_next;
    *link = s->bucket_next;
    lru_unlink(st, s);
    st->count--;
    st->bytes -= s->bytes;
    session_free(s);
}

/* Evicts least recently used sessions until extra_sessions more and extra_bytes fit. */
static void make_room(session_store *st, long extra_sessions, size_t extra_bytes) {
    while (st->lru_tail &&
           (st->count + extra_sessions > st->max_count || st->bytes + extra_bytes > st->max_bytes))
        remove_session(st, st->lru_tail);
}

static size_t turn_bytes(json_t *turn) {
    size_t n = 64;
    const char *text = json_string_value(json_object_get(turn, "text"));
    return n + (text ? strlen(text) : 0);
}

/* ---- public ---- */

/* Replaces the session's state with a copy of state[len]; -1 when out of memory. */
static int set_state(session *s, const uint8_t *state, size_t len) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return -1;
    memcpy(copy, state, len);
    free(s->state);
    s->bytes = s->bytes - s->state_len + len;
    s->state = copy;
    s->state_len = len;
    return 0;
}

static session *session_new(const char *id, const uint8_t *state, size_t len, int64_t created_at) {
    session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->turns = json_array();
    s->bytes = sizeof *s;
    if (!s->turns || set_state(s, state, len)) {
        session_free(s);
        return NULL;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    s->created_at = created_at;
    s->last_used = now_s();
    return s;
}

static void random_id(char *out) {
    unsigned char raw[SESSION_ID_LEN / 2];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        struct timespec t; /* never expected; ids stay unique, though guessable */
        clock_gettime(CLOCK_REALTIME, &t);
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)((t.tv_nsec >> (i % 8)) ^ (uintptr_t)out ^ i * 131);
    }
    for (size_t i = 0; i < sizeof raw; i++) sprintf(out + 2 * i, "%02x", raw[i]);
}

tl_status session_store_create_session(session_store *st, const uint8_t *state, size_t len,
                                       char *id_out, int64_t *expires_at, tl_error *err) {
    char id[SESSION_ID_LEN + 1];
    random_id(id);
    if (st->redis) {
        tl_status status = session_redis_create(st->redis, id, state, len, now_s(), err);
        memcpy(id_out, id, sizeof id);
        *expires_at = now_s() + st->ttl_s;
        return status;
    }
    session *s = session_new(id, state, len, now_s());
    if (!s) return tl_fail(err, TL_ERR_NOMEM, "session");
    pthread_mutex_lock(&st->lock);
    make_room(st, 1, s->bytes);
    insert(st, s);
    pthread_mutex_unlock(&st->lock);
    memcpy(id_out, id, sizeof id);
    *expires_at = s->last_used + st->ttl_s;
    return TL_OK;
}

json_t *session_store_describe(session_store *st, const char *id) {
    if (st->redis) return session_id_valid(id) ? session_redis_describe(st->redis, id) : NULL;
    pthread_mutex_lock(&st->lock);
    session *s = find(st, id);
    json_t *out = NULL;
    if (s) {
        touch(st, s);
        out = json_pack("{s:s, s:I, s:I, s:i, s:O}", "session_id", s->id, "created_at",
                        (json_int_t)s->created_at, "expires_at",
                        (json_int_t)(s->last_used + st->ttl_s), "turn_count", s->turn_count,
                        "turns", s->turns);
    }
    pthread_mutex_unlock(&st->lock);
    return out;
}

tl_status session_store_state(session_store *st, const char *id, uint8_t **state, size_t *len,
                              tl_error *err) {
    *state = NULL;
    if (st->redis) return session_redis_state(st->redis, id, state, len, err);
    pthread_mutex_lock(&st->lock);
    session *s = find(st, id);
    if (s && (*state = malloc(s->state_len ? s->state_len : 1))) {
        memcpy(*state, s->state, s->state_len);
        *len = s->state_len;
    }
    pthread_mutex_unlock(&st->lock);
    if (!s) return tl_fail(err, TL_ERR_NOT_FOUND, "no session %s", id);
    return *state ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "session state");
}

tl_status session_store_add_turn(session_store *st, const char *id, const uint8_t *state,
                                 size_t len, json_t *turn, tl_error *err) {
    if (st->redis) return session_redis_add_turn(st->redis, id, state, len, turn, err);
    pthread_mutex_lock(&st->lock);
    session *s = find(st, id);
    size_t before = s ? s->bytes : 0;
    tl_status status = !s ? tl_fail(err, TL_ERR_NOT_FOUND, "no session %s", id)
                       : set_state(s, state, len) ? tl_fail(err, TL_ERR_NOMEM, "session state")
                                                  : TL_OK;
    if (!status) {
        s->turn_count++;
        json_object_set_new(turn, "turn", json_integer(s->turn_count));
        s->bytes += turn_bytes(turn);
        json_array_append(s->turns, turn);
        if (json_array_size(s->turns) > SESSION_MAX_TURNS_KEPT) {
            s->bytes -= turn_bytes(json_array_get(s->turns, 0));
            json_array_remove(s->turns, 0);
        }
        st->bytes = st->bytes - before + s->bytes;
        lru_unlink(st, s); /* keep the session itself out of eviction */
        make_room(st, 0, 0);
        lru_push_front(st, s);
        s->last_used = now_s();
    }
    pthread_mutex_unlock(&st->lock);
    json_decref(turn);
    return status;
}

int session_store_delete(session_store *st, const char *id) {
    if (st->redis) return session_id_valid(id) ? session_redis_delete(st->redis, id) : -1;
    pthread_mutex_lock(&st->lock);
    session *s = find(st, id);
    if (s) remove_session(st, s);
    pthread_mutex_unlock(&st->lock);
    return s ? 0 : -1;
}

long session_store_expire(session_store *st) {
    if (st->redis) return 0; /* Redis expires keys itself */
    int64_t cutoff = now_s() - st->ttl_s;
    long removed = 0;
    pthread_mutex_lock(&st->lock);
    while (st->lru_tail && st->lru_tail->last_used < cutoff) {
        remove_session(st, st->lru_tail);
        removed++;
    }
    pthread_mutex_unlock(&st->lock);
    return removed;
}

void session_store_stats(session_store *st, long *count, size_t *bytes) {
    if (st->redis) {
        *count = session_redis_count(st->redis);
        *bytes = 0;
        return;
    }
    pthread_mutex_lock(&st->lock);
    *count = st->count;
    *bytes = st->bytes;
    pthread_mutex_unlock(&st->lock);
}

/* ---- snapshots ---- */

static json_t *session_json(const session *s) {
    char *state = base64_encode(s->state, s->state_len);
    json_t *line =
        state ? json_pack("{s:s, s:I, s:I, s:i, s:s, s:O}", "session_id", s->id, "created_at",
                          (json_int_t)s->created_at, "last_used", (json_int_t)s->last_used,
                          "turn_count", s->turn_count, "state", state, "turns", s->turns)
              : NULL;
    free(state);
    return line;
}

tl_status session_store_save(session_store *st, const char *path, tl_error *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return tl_fail(err, TL_ERR_IO, "cannot write %s", tmp);
    int ok = 1;
    pthread_mutex_lock(&st->lock);
    for (session *s = st->lru_tail; s && ok; s = s->lru_prev) { /* oldest first */
        json_t *line = session_json(s);
        ok = line && json_dumpf(line, f, JSON_COMPACT) == 0 && fputc('\n', f) != EOF;
        json_decref(line);
    }
    pthread_mutex_unlock(&st->lock);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        unlink(tmp);
        return tl_fail(err, TL_ERR_IO, "cannot write %s", path);
    }
    return TL_OK;
}

/* Restores one snapshot line; lock held. Lines of expired sessions are skipped. */
static tl_status restore_line(session_store *st, json_t *line, long *n_loaded, tl_error *err) {
    json_t *state_text = json_object_get(line, "state"), *turns = json_object_get(line, "turns");
    const char *id = json_string_value(json_object_get(line, "session_id"));
    json_int_t last_used = json_integer_value(json_object_get(line, "last_used"));
    uint8_t *state = NULL;
    size_t len = 0;
    if (!session_id_valid(id) || !json_is_array(turns) || !json_is_string(state_text) ||
        base64_decode(json_string_value(state_text), json_string_length(state_text), &state, &len))
        return tl_fail(err, TL_ERR_FORMAT, "not a session snapshot line");
    session *s = NULL;
    if (last_used + st->ttl_s >= now_s() && !find(st, id)) {
        s = session_new(id, state, len, json_integer_value(json_object_get(line, "created_at")));
        if (!s) {
            free(state);
            return tl_fail(err, TL_ERR_NOMEM, "session");
        }
    }
    free(state);
    if (!s) return TL_OK; /* expired, or already there */
    s->last_used = last_used;
    s->turn_count = (int)json_integer_value(json_object_get(line, "turn_count"));
    json_array_extend(s->turns, turns);
    size_t i;
    json_t *turn;
    json_array_foreach(s->turns, i, turn) s->bytes += turn_bytes(turn);
    make_room(st, 1, s->bytes);
    insert(st, s);
    (*n_loaded)++;
    return TL_OK;
}

tl_status session_store_load(session_store *st, const char *path, long *n_loaded, tl_error *err) {
    long loaded = 0;
    FILE *f = fopen(path, "r");
    tl_status status = TL_OK;
    if (f) {
        char *text = NULL;
        size_t cap = 0;
        int line_no = 0;
        pthread_mutex_lock(&st->lock);
        while (!status && getline(&text, &cap, f) > 0) {
            line_no++;
            json_t *line = json_loads(text, 0, NULL);
            status = line ? restore_line(st, line, &loaded, err)
                          : tl_fail(err, TL_ERR_FORMAT, "not JSON");
            json_decref(line);
            if (status) tl_error_prefix(err, "%s line %d", path, line_no);
        }
        pthread_mutex_unlock(&st->lock);
        free(text);
        fclose(f);
    }
    if (n_loaded) *n_loaded = loaded;
    return status;
}
