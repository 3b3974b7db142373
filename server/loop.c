/* loop.h over libuv: one loop on the main thread with signal, timer, async and work handles. */
#include "loop.h"

#include <stdlib.h>
#include <uv.h>

#include "log.h"

typedef struct loop_state {
    tailord *app;
    uv_loop_t loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t expiry, drain;
    uv_async_t reload_wakeup;
    uv_work_t reload_work;
    engine *loaded;
    tl_error load_err;
    uint64_t drain_started_ms;
} loop_state;

static loop_state *the_loop; /* request_reload's way back to the loop; one per process */

/* ---- reload ---- */

static void load_in_pool(uv_work_t *work) {
    loop_state *ls = work->data;
    tailord_config *cfg = &ls->app->cfg;
    ls->load_err = (tl_error){0};
    ls->loaded = NULL;
    engine_load(&ls->loaded, cfg->model_dir, cfg->index_dir, (int)cfg->threads,
                (size_t)cfg->image_max_pixels, cfg->sessions_decay, &ls->load_err);
}

static void load_finished(uv_work_t *work, int status) {
    loop_state *ls = work->data;
    if (ls->loaded) {
        engine_slot_swap(ls->app->engines, ls->loaded);
        log_event(LOG_INFO, "reload",
                  json_pack("{s:s, s:I}", "embedding_version", ls->loaded->version, "items",
                            (json_int_t)search_service_count(ls->loaded->search)),
                  "serving model %s and index %s", ls->app->cfg.model_dir, ls->app->cfg.index_dir);
    } else {
        log_event(LOG_ERROR, "reload",
                  json_pack("{s:s}", "code", tl_status_name(ls->load_err.code)),
                  "load failed, still serving the previous engine: %s", ls->load_err.message);
    }
    ls->loaded = NULL;
    atomic_store(&ls->app->reloading, 0);
}

static void start_reload(loop_state *ls) {
    ls->reload_work.data = ls;
    if (uv_queue_work(&ls->loop, &ls->reload_work, load_in_pool, load_finished)) {
        log_event(LOG_ERROR, "reload", NULL, "could not queue the reload");
        atomic_store(&ls->app->reloading, 0);
    }
}

static void on_reload_wakeup(uv_async_t *h) {
    start_reload(h->data);
}

static void request_reload(tailord *app) {
    uv_async_send(&the_loop->reload_wakeup);
}

static void on_sighup(uv_signal_t *h, int signum) {
    loop_state *ls = h->data;
    if (atomic_exchange(&ls->app->reloading, 1)) return;
    log_event(LOG_INFO, "signal", NULL, "SIGHUP: reloading model and index");
    start_reload(ls);
}

/* ---- drain and stop ---- */

static void close_handle(uv_handle_t *h, void *arg) {
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void on_drain_tick(uv_timer_t *h) {
    loop_state *ls = h->data;
    int in_flight = http_server_in_flight(ls->app->http);
    uint64_t waited_ms = uv_now(&ls->loop) - ls->drain_started_ms;
    if (in_flight > 0 && waited_ms < (uint64_t)ls->app->cfg.drain_timeout_s * 1000) return;
    log_event(in_flight ? LOG_WARN : LOG_INFO, "drain", json_pack("{s:i}", "in_flight", in_flight),
              "drained in %llu ms", (unsigned long long)waited_ms);
    batcher_stop(ls->app->batcher);  /* answers whatever is still queued */
    http_server_stop(ls->app->http); /* no request can reach the loop after this */
    ls->app->http = NULL;
    uv_walk(&ls->loop, close_handle, NULL); /* the loop ends once the reload work is done */
}

static void on_stop_signal(uv_signal_t *h, int signum) {
    loop_state *ls = h->data;
    if (atomic_exchange(&ls->app->draining, 1)) return;
    log_event(LOG_INFO, "signal", json_pack("{s:i}", "signal", signum),
              "stopping: no new connections, draining requests in flight");
    http_server_quiesce(ls->app->http);
    ls->drain_started_ms = uv_now(&ls->loop);
    uv_timer_start(&ls->drain, on_drain_tick, 0, 10);
}

static void on_expiry_tick(uv_timer_t *h) {
    loop_state *ls = h->data;
    long removed = session_store_expire(ls->app->sessions);
    if (removed) log_event(LOG_DEBUG, "sessions", NULL, "%ld sessions expired", removed);
}

/* ---- run ---- */

static int init_handles(loop_state *ls) {
    uv_handle_t *handles[] = {(uv_handle_t *)&ls->sigterm, (uv_handle_t *)&ls->sigint,
                              (uv_handle_t *)&ls->sighup,  (uv_handle_t *)&ls->expiry,
                              (uv_handle_t *)&ls->drain,   (uv_handle_t *)&ls->reload_wakeup};
    int rc = uv_signal_init(&ls->loop, &ls->sigterm) || uv_signal_init(&ls->loop, &ls->sigint) ||
             uv_signal_init(&ls->loop, &ls->sighup) || uv_timer_init(&ls->loop, &ls->expiry) ||
             uv_timer_init(&ls->loop, &ls->drain) ||
             uv_async_init(&ls->loop, &ls->reload_wakeup, on_reload_wakeup);
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++) handles[i]->data = ls;
    if (rc) return -1;
    return uv_signal_start(&ls->sigterm, on_stop_signal, SIGTERM) ||
                   uv_signal_start(&ls->sigint, on_stop_signal, SIGINT) ||
                   uv_signal_start(&ls->sighup, on_sighup, SIGHUP) ||
                   uv_timer_start(&ls->expiry, on_expiry_tick, 1000, 1000)
               ? -1
               : 0;
}

int loop_run(tailord *app) {
    loop_state *ls = calloc(1, sizeof *ls);
    if (!ls || uv_loop_init(&ls->loop)) {
        free(ls);
        return 1;
    }
    ls->app = app;
    the_loop = ls;
    app->request_reload = request_reload;
    int rc = init_handles(ls);
    if (!rc) {
        atomic_store(&app->reloading, 1);
        start_reload(ls); /* the first load: /healthz answers while it runs, /readyz waits */
        uv_run(&ls->loop, UV_RUN_DEFAULT);
    } else {
        log_event(LOG_ERROR, "loop", NULL, "could not set up signals and timers");
        uv_walk(&ls->loop, close_handle, NULL);
        uv_run(&ls->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&ls->loop);
    the_loop = NULL;
    free(ls);
    return rc ? 1 : 0;
}
