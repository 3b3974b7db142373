/* server/session_store.c: create/describe/turn/delete, LRU eviction by count and by bytes,
 * TTL expiry, and a snapshot round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "session_store.h"

static void new_session(session_store *st, char *id) {
    int64_t expires;
    tl_error err;
    session_store_create_session(st, (const uint8_t *)"init", 4, id, &expires, &err);
}

/* A turn whose new state is the bytes of state_text. */
static tl_status turn(session_store *st, const char *id, const char *state_text, const char *text) {
    tl_error err;
    return session_store_add_turn(st, id, (const uint8_t *)state_text, strlen(state_text),
                                  json_pack("{s:s}", "text", text), &err);
}

/* Whether the session's state is the bytes of want. */
static int state_is(session_store *st, const char *id, const char *want) {
    uint8_t *state = NULL;
    size_t len = 0;
    tl_error err;
    if (session_store_state(st, id, &state, &len, &err)) return 0;
    int same = len == strlen(want) && !memcmp(state, want, len);
    free(state);
    return same;
}

TEST(lifecycle) {
    session_store *st = session_store_create(10, 1 << 20, 60);
    char id[SESSION_ID_LEN + 1];
    new_session(st, id);
    CHECK(session_id_valid(id));
    CHECK(state_is(st, id, "init"));
    CHECK(turn(st, id, "state-1", "red") == TL_OK);
    CHECK(turn(st, id, "state-2", "shorter") == TL_OK);
    CHECK(state_is(st, id, "state-2"));
    json_t *d = session_store_describe(st, id);
    REQUIRE(d);
    CHECK(json_integer_value(json_object_get(d, "turn_count")) == 2);
    CHECK(json_integer_value(
              json_object_get(json_array_get(json_object_get(d, "turns"), 1), "turn")) == 2);
    json_decref(d);
    CHECK(session_store_delete(st, id) == 0);
    CHECK(session_store_delete(st, id) == -1);
    CHECK(session_store_describe(st, id) == NULL);
    CHECK(turn(st, id, "s", "x") == TL_ERR_NOT_FOUND);
    CHECK(!state_is(st, id, "state-2"));
    session_store_free(st);
}

TEST(lru_eviction_by_count) {
    session_store *st = session_store_create(3, 1 << 20, 60);
    char ids[4][SESSION_ID_LEN + 1];
    for (int i = 0; i < 3; i++) new_session(st, ids[i]);
    json_decref(session_store_describe(st, ids[0])); /* ids[1] is now least recently used */
    new_session(st, ids[3]);
    long count;
    size_t bytes;
    session_store_stats(st, &count, &bytes);
    CHECK(count == 3);
    json_t *d0 = session_store_describe(st, ids[0]), *d1 = session_store_describe(st, ids[1]);
    CHECK(d0 != NULL && d1 == NULL);
    json_decref(d0);
    session_store_free(st);
}

TEST(eviction_by_bytes) {
    session_store *st = session_store_create(1000, 2000, 60);
    char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
    new_session(st, a);
    new_session(st, b);
    char text[1800];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = 0;
    CHECK(turn(st, b, "s", text) == TL_OK);
    long count;
    size_t bytes;
    session_store_stats(st, &count, &bytes);
    CHECKF(bytes <= 2000 && count == 1, "bytes %zu count %ld", bytes, count);
    json_t *kept = session_store_describe(st, b);
    CHECK(kept != NULL); /* the session just used is never the one evicted */
    json_decref(kept);
    session_store_free(st);
}

TEST(ttl_expiry) {
    session_store *st = session_store_create(10, 1 << 20, 1);
    char id[SESSION_ID_LEN + 1];
    new_session(st, id);
    CHECK(session_store_expire(st) == 0);
    sleep(2);
    CHECK(session_store_expire(st) == 1);
    CHECK(session_store_describe(st, id) == NULL);
    session_store_free(st);
}

TEST(snapshot_round_trip) {
    char path[] = "/tmp/tailord-sessions-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    session_store *st = session_store_create(10, 1 << 20, 60);
    char id[SESSION_ID_LEN + 1];
    new_session(st, id);
    CHECK(turn(st, id, "state \x01\xff binary", "navy") == TL_OK);
    tl_error err;
    CHECK(session_store_save(st, path, &err) == TL_OK);
    session_store_free(st);
    session_store *back = session_store_create(10, 1 << 20, 60);
    long n = 0;
    CHECK(session_store_load(back, path, &n, &err) == TL_OK && n == 1);
    CHECK(state_is(back, id, "state \x01\xff binary"));
    json_t *d = session_store_describe(back, id);
    CHECK(d && json_integer_value(json_object_get(d, "turn_count")) == 1);
    json_decref(d);
    session_store_free(back);
    FILE *f = fopen(path, "w");
    fputs("{\"session_id\": \"nope\"}\n", f);
    fclose(f);
    back = session_store_create(10, 1 << 20, 60);
    CHECK(session_store_load(back, path, &n, &err) == TL_ERR_FORMAT);
    session_store_free(back);
    unlink(path);
}

int main(void) {
    RUN(lifecycle);
    RUN(lru_eviction_by_count);
    RUN(eviction_by_bytes);
    RUN(ttl_expiry);
    RUN(snapshot_round_trip);
    return th_done();
}
