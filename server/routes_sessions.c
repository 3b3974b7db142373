/* Multi-turn search sessions: POST /v1/sessions, POST /v1/sessions/{id}/turns,
 * GET and DELETE /v1/sessions/{id}. A turn composes feedback text with an optional reference
 * (catalogue item or image), steps the session memory (session_memory.h; the turns of one
 * batch together), ranks by the session query, and records the turn. */
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

/* One turn of a batch on its way: the call, its embedding row, and its memory step (x and q
 * point into the batch's buffer). */
typedef struct turn_step {
    turn_call *call;
    const float *row;
    session_memory_turn_io io;
    int in_round, answered;
} turn_step;

/* Answers the turn's request with answer (taken) or err; 404 when the session vanished
 * (expired or evicted) meanwhile. */
static void turn_answer(turn_step *t, json_t *answer, int session_gone, const tl_error *err) {
    if (err->code)
        http_respond_error(t->call->req,
                           session_gone ? API_SESSION_NOT_FOUND : api_error_from_status(err->code),
                           "%s", err->message);
    else
        http_respond_json(t->call->req, 200, answer);
    t->answered = 1;
}

/* The turn's inputs to its memory step: the session's stored state and x (text and reference
 * composed). Returns 0, or answers the request and returns nonzero. */
static int turn_input(turn_step *t, engine *eng) {
    turn_call *call = t->call;
    tl_error err = {0};
    tl_status st =
        session_store_state(call->app->sessions, call->session_id, &t->io.state, &t->io.len, &err);
    int session_gone = st == TL_ERR_NOT_FOUND;
    if (!st) st = query_embedding(eng, &call->plan, t->row, t->io.x, &err);
    if (st) turn_answer(t, NULL, session_gone, &err);
    return st;
}

/* After the memory step: ranks by the session query, stores the new state with the turn
 * record, and answers. */
static void turn_finish(turn_step *t, engine *eng) {
    turn_call *call = t->call;
    tl_error err = t->io.err;
    int session_gone = 0;
    json_t *results = NULL, *turn = NULL, *answer = NULL;
    if (!err.code) {
        search_filter filter = {call->query.category, call->query.subcategory, call->plan.item_id};
        results = search_service_search(eng->search, call->plan.space, t->io.q, &filter,
                                        call->query.limit, call->query.offset, eng->version);
        json_t *reference =
            call->plan.item_id >= 0 ? json_integer(call->plan.item_id) : json_null();
        turn = json_pack("{s:s*, s:o, s:s}", "text", call->text, "reference_item_id", reference,
                         "mode", call->plan.mode);
        json_incref(turn); /* one reference goes to the store, one to the answer */
        session_gone = session_store_add_turn(call->app->sessions, call->session_id, t->io.next,
                                              t->io.next_len, turn, &err) == TL_ERR_NOT_FOUND;
    }
    if (!err.code)
        answer = json_pack("{s:s, s:O, s:O, s:s}", "session_id", call->session_id, "turn", turn,
                           "results", results, "embedding_version", eng->version);
    json_decref(turn);
    json_decref(results);
    turn_answer(t, answer, session_gone, &err);
}

/* Whether step i is its session's first unanswered turn: a session's turns run in request
 * order, one per round, each on the state the previous one stored. */
static int first_of_its_session(const turn_step *steps, int i) {
    for (int j = 0; j < i; j++)
        if (!steps[j].answered && !strcmp(steps[j].call->session_id, steps[i].call->session_id))
            return 0;
    return 1;
}

/* One round: reads the inputs of each session's first unanswered turn, steps their sessions
 * in one memory step, and finishes them. ios: room for n pointers. */
static void run_round(turn_step *steps, int n, engine *eng, session_memory_turn_io **ios) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        turn_step *t = &steps[i];
        t->in_round = !t->answered && first_of_its_session(steps, i) && !turn_input(t, eng);
        if (t->in_round) ios[k++] = &t->io;
    }
    if (k) session_memory_turns(eng->model, ios, k);
    for (int i = 0; i < n; i++)
        if (steps[i].in_round) turn_finish(&steps[i], eng);
}

/* Sets up step t of call with its embedding row, err and x (x[dim], q[dim] follow; NULL when
 * out of memory). A turn that cannot run (no engine, its embedding failed, no memory) is
 * answered at once. */
static void turn_start(turn_step *t, turn_call *call, engine *eng, const float *row,
                       const tl_error *err, float *x, int dim) {
    *t = (turn_step){.call = call, .row = row, .io = {.x = x, .q = x ? x + dim : NULL}};
    t->answered = 1;
    if (!eng)
        http_respond_error(call->req, API_NOT_READY, "model and index are not loaded yet");
    else if (err->code)
        app_respond_batch_error(call->req, err);
    else if (!x)
        http_respond_error(call->req, API_INTERNAL, "out of memory");
    else
        t->answered = 0;
}

/* The batch's session turns (the batcher's done_together): the turns step their sessions
 * together, round by round. */
static void turns_done(batch_job **jobs, int n, engine *eng, const float *const *rows, int dim,
                       const tl_error *errs) {
    turn_step *steps = calloc((size_t)n, sizeof *steps);
    session_memory_turn_io **ios = malloc((size_t)n * sizeof *ios);
    float *vectors = malloc((size_t)n * 2 * (size_t)(dim ? dim : 1) * sizeof *vectors);
    int buffers = steps && ios && vectors;
    for (int i = 0; i < n; i++) {
        turn_step alone, *t = buffers ? &steps[i] : &alone;
        float *x = buffers ? vectors + (size_t)i * 2 * dim : NULL;
        turn_start(t, jobs[i]->ctx, eng, rows[i], &errs[i], x, dim);
    }
    for (int i = 0; buffers && i < n; i++)
        while (!steps[i].answered) run_round(steps, n, eng, ios);
    for (int i = 0; buffers && i < n; i++) {
        free(steps[i].io.state);
        free(steps[i].io.next);
    }
    for (int i = 0; i < n; i++) turn_call_free(jobs[i]->ctx);
    free(steps);
    free(ios);
    free(vectors);
}

/* A turn answered alone (when the batcher could not group it). */
static void turn_done(batch_job *job, engine *eng, const float *rows, int dim, const tl_error *err,
                      void *ctx) {
    turns_done(&job, 1, eng, &rows, dim, err);
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
    if (job) job->done_together = turns_done;
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
