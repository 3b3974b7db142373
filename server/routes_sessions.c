/* Multi-turn search sessions: POST /v1/sessions, POST /v1/sessions/{id}/turns,
 * GET and DELETE /v1/sessions/{id}. A turn composes feedback text with an optional reference
 * (catalogue item or image), steps the session memory (session_memory.h), ranks by the session
 * query, and records the turn. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "query.h"
#include "session_memory.h"

/* The path's session id, or NULL after answering 400 for a malformed one. */
static const char *session_id_param(http_request *req) {
    const char *id = http_request_param(req);
    if (session_id_valid(id)) return id;
    http_respond_error(req, API_BAD_REQUEST, "a session id is 32 lower-case hex characters");
    return NULL;
}

static void post_session(http_request *req, void *ctx) {
    tailord *app = ctx;
    if (app_require_empty_body(req)) return;
    engine *eng = engine_acquire(app->engines);
    if (!eng) {
        http_respond_error(req, API_NOT_READY, "model and index are not loaded yet");
        return;
    }
    char id[SESSION_ID_LEN + 1];
    int64_t expires_at;
    tl_error err = {0};
    uint8_t *state = NULL;
    size_t state_len = 0;
    if (session_memory_initial(eng->model, &state, &state_len, &err) ||
        session_store_create_session(app->sessions, state, state_len, id, &expires_at, &err))
        app_respond_batch_error(req, &err);
    else
        http_respond_json(
            req, 201,
            json_pack("{s:s, s:I}", "session_id", id, "expires_at", (json_int_t)expires_at));
    free(state);
    engine_release(app->engines, eng);
}

static void get_session(http_request *req, void *ctx) {
    tailord *app = ctx;
    const char *id = session_id_param(req);
    if (!id) return;
    json_t *session = session_store_describe(app->sessions, id);
    if (!session)
        http_respond_error(req, API_SESSION_NOT_FOUND, "no session %s", id);
    else
        http_respond_json(req, 200, session);
}

static void delete_session(http_request *req, void *ctx) {
    tailord *app = ctx;
    const char *id = session_id_param(req);
    if (!id) return;
    if (session_store_delete(app->sessions, id))
        http_respond_error(req, API_SESSION_NOT_FOUND, "no session %s", id);
    else
        http_respond_json(req, 200, json_pack("{s:s, s:b}", "session_id", id, "deleted", 1));
}

typedef struct turn_call {
    tailord *app;
    http_request *req;
    char session_id[SESSION_ID_LEN + 1];
    search_request query;
    query_plan plan;
    char *text; /* copy of the feedback text for the turn record */
} turn_call;

static void turn_call_free(turn_call *call) {
    search_request_free(&call->query);
    free(call->text);
    free(call);
}

/* The turn: its input x (text and reference composed), one memory step over the session's
 * stored state giving the session query, ranking, and the new state stored with the turn
 * record. *answer gets the response body; *session_gone is set when the session vanished
 * (expired or evicted) meanwhile. Runs on the batcher thread, so turns never interleave. */
static tl_status run_turn(turn_call *call, engine *eng, const float *rows, json_t **answer,
                          int *session_gone, tl_error *err) {
    int dim = search_service_dim(eng->search);
    float *x = malloc(2 * (size_t)dim * sizeof *x);
    if (!x) return tl_fail(err, TL_ERR_NOMEM, "turn");
    float *query = x + dim;
    uint8_t *state = NULL, *next = NULL;
    size_t len = 0, next_len = 0;
    tl_status st = session_store_state(call->app->sessions, call->session_id, &state, &len, err);
    *session_gone = st == TL_ERR_NOT_FOUND;
    if (!st) st = query_embedding(eng, &call->plan, rows, x, err);
    if (!st) st = session_memory_turn(eng->model, state, len, x, query, &next, &next_len, err);
    json_t *results = NULL, *turn = NULL;
    if (!st) {
        search_filter filter = {call->query.category, call->query.subcategory, call->plan.item_id};
        results = search_service_search(eng->search, call->plan.space, query, &filter,
                                        call->query.limit, call->query.offset, eng->version);
        json_t *reference =
            call->plan.item_id >= 0 ? json_integer(call->plan.item_id) : json_null();
        turn = json_pack("{s:s*, s:o, s:s}", "text", call->text, "reference_item_id", reference,
                         "mode", call->plan.mode);
        json_incref(turn); /* one reference goes to the store, one to the answer */
        st = session_store_add_turn(call->app->sessions, call->session_id, next, next_len, turn,
                                    err);
        *session_gone = st == TL_ERR_NOT_FOUND;
    }
    if (!st)
        *answer = json_pack("{s:s, s:O, s:O, s:s}", "session_id", call->session_id, "turn", turn,
                            "results", results, "embedding_version", eng->version);
    json_decref(turn);
    json_decref(results);
    free(state);
    free(next);
    free(x);
    return st;
}

static void turn_done(batch_job *job, engine *eng, const float *rows, int dim, const tl_error *err,
                      void *ctx) {
    turn_call *call = ctx;
    http_request *req = call->req;
    json_t *answer = NULL;
    tl_error turn_err = {0};
    int session_gone = 0;
    if (!eng)
        http_respond_error(req, API_NOT_READY, "model and index are not loaded yet");
    else if (err->code)
        app_respond_batch_error(req, err);
    else if (run_turn(call, eng, rows, &answer, &session_gone, &turn_err))
        http_respond_error(
            req, session_gone ? API_SESSION_NOT_FOUND : api_error_from_status(turn_err.code), "%s",
            turn_err.message);
    else
        http_respond_json(req, 200, answer);
    turn_call_free(call);
}

static void post_turn(http_request *req, void *ctx) {
    tailord *app = ctx;
    const char *id = session_id_param(req);
    if (!id) return;
    json_t *exists = session_store_describe(app->sessions, id);
    json_decref(exists);
    if (!exists) {
        http_respond_error(req, API_SESSION_NOT_FOUND, "no session %s", id);
        return;
    }
    turn_call *call = calloc(1, sizeof *call);
    size_t len;
    const uint8_t *body = http_request_body(req, &len);
    request_error e;
    if (!call) {
        http_respond_error(req, API_INTERNAL, "out of memory");
        return;
    }
    *call = (turn_call){.app = app, .req = req};
    memcpy(call->session_id, id, sizeof call->session_id);
    if (parse_turn_request(body, len, &call->query, &e)) {
        app_respond_parse_error(req, &e);
        turn_call_free(call);
        return;
    }
    call->text = call->query.text ? strdup(call->query.text) : NULL;
    int copy_failed = call->query.text && !call->text;
    char *reference = NULL;
    if (app_reference_image(app, req, &call->query, &reference)) {
        turn_call_free(call);
        return;
    }
    batch_job *job = query_job_new(&call->query, reference, &call->plan, turn_done, call);
    call->plan.space = SPACE_TGIR; /* session queries rank TGIR targets */
    free(reference);
    if (!job || copy_failed) {
        batch_job_free(job);
        http_respond_error(req, API_INTERNAL, "out of memory");
        turn_call_free(call);
        return;
    }
    if (app_submit(app, req, job)) turn_call_free(call);
}

const http_route session_routes[] = {
    {HTTP_POST, "/v1/sessions", post_session, 0},
    {HTTP_POST, "/v1/sessions/{}/turns", post_turn, HTTP_ROUTE_JSON_BODY},
    {HTTP_GET, "/v1/sessions/{}", get_session, 0},
    {HTTP_DELETE, "/v1/sessions/{}", delete_session, 0},
};
const int session_route_count = sizeof session_routes / sizeof session_routes[0];
