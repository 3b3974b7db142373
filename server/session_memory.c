/* session_memory.h over the public session API of model/tailor_model.h. */
#include "session_memory.h"

#include <stdlib.h>
#include <string.h>

tl_status session_memory_initial(tl_model *m, uint8_t **bytes, size_t *len, tl_error *err) {
    tl_session *s = NULL;
    tl_status st = tl_session_create(m, NULL, &s, err);
    if (!st) st = tl_session_serialize(m, s, bytes, len, err);
    tl_session_free(s);
    return st;
}

/* The turns' sessions restored from their bytes, in turns' order (NULL where that failed, with
 * the turn's error set). */
static void restore_all(tl_model *m, session_memory_turn_io *const *turns, int n,
                        tl_session **sessions) {
    for (int i = 0; i < n; i++) {
        session_memory_turn_io *t = turns[i];
        tl_status st = tl_session_restore(m, t->state, t->len, &sessions[i], &t->err);
        if (st == TL_ERR_INVALID) tl_error_prefix(&t->err, "the session belongs to another model");
    }
}

/* One tl_session_turn_vec_batch over the restored sessions (gathered into batch, x and q);
 * when it refuses, each steps alone so every turn gets its own error. */
static void step_all(tl_model *m, session_memory_turn_io *const *turns, int n,
                     tl_session **sessions, tl_session **batch, float *x, float *q) {
    size_t P = (size_t)tl_model_get_info(m)->projection_dim;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!sessions[i]) continue;
        memcpy(x + k * P, turns[i]->x, P * sizeof *x);
        batch[k++] = sessions[i];
    }
    tl_error err = {0};
    int batched = k && tl_session_turn_vec_batch(m, batch, x, k, q, &err) == TL_OK;
    for (int i = 0, j = 0; i < n; i++) {
        session_memory_turn_io *t = turns[i];
        if (!sessions[i]) continue;
        tl_status st = TL_OK;
        if (batched)
            memcpy(t->q, q + j++ * P, P * sizeof *q);
        else
            st = tl_session_turn_vec(m, sessions[i], t->x, t->q, &t->err);
        if (!st) tl_session_serialize(m, sessions[i], &t->next, &t->next_len, &t->err);
    }
}

void session_memory_turns(tl_model *m, session_memory_turn_io *const *turns, int n) {
    size_t P = (size_t)tl_model_get_info(m)->projection_dim;
    tl_session **sessions = calloc((size_t)n, sizeof *sessions);
    tl_session **batch = malloc((size_t)n * sizeof *batch);
    float *x = malloc((size_t)n * P * sizeof *x), *q = malloc((size_t)n * P * sizeof *q);
    for (int i = 0; i < n; i++) {
        turns[i]->err = (tl_error){0};
        turns[i]->next = NULL;
        turns[i]->next_len = 0;
        if (!sessions || !batch || !x || !q)
            tl_fail(&turns[i]->err, TL_ERR_NOMEM, "out of memory for %d session turns", n);
    }
    if (sessions && batch && x && q) {
        restore_all(m, turns, n, sessions);
        step_all(m, turns, n, sessions, batch, x, q);
    }
    for (int i = 0; sessions && i < n; i++) tl_session_free(sessions[i]);
    free(sessions);
    free(batch);
    free(x);
    free(q);
}
