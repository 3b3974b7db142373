/* The caption decoder's bfloat16 weights (tl_model_opts.decode_bf16): converted once when the
 * model opens, held in one backend allocation, bound into a view of the text tower and its XAA
 * that decode.c runs instead of the fp32 one. Serving speed for a small loss of precision.
 * Not for: teacher forcing, training, or any path whose results must match the reference. */
#include <stdlib.h>
#include <string.h>

#include "tasks_internal.h"

/* Elements of every copy: per layer q, k, v, out [D,D], fc1 [I,D], fc2 [D,I], XAA q [D,D];
 * then the head [vocab, D]. */
static size_t copy_elements(const tl_model *m) {
    const clip_tower *t = &m->w.text.tower;
    size_t D = (size_t)t->width, I = (size_t)t->mlp;
    return (size_t)t->n_layers * (5 * D * D + 2 * D * I) + (size_t)m->w.text.vocab * D;
}

/* Copies src[n] into the next n bfloat16 of *cursor, returning where they went. */
static const tl_bf16 *take_copy(tl_backend *be, tl_bf16 **cursor, const float *src, size_t n) {
    tl_bf16 *dst = *cursor;
    be->to_bf16(be, dst, src, n);
    *cursor += n;
    return dst;
}

static void bind_copies(tl_model *m, decode_bf16 *v) {
    tl_backend *be = m->be;
    const clip_tower *t = &m->w.text.tower;
    size_t D = (size_t)t->width, I = (size_t)t->mlp;
    tl_bf16 *cursor = v->copies;
    for (int l = 0; l < t->n_layers; l++) {
        clip_layer_w *w = &v->tower.layers[l];
        clip_layer_bf16 *c = &v->layer_copies[l];
        c->q = take_copy(be, &cursor, w->q_w, D * D);
        c->k = take_copy(be, &cursor, w->k_w, D * D);
        c->v = take_copy(be, &cursor, w->v_w, D * D);
        c->out = take_copy(be, &cursor, w->out_w, D * D);
        c->fc1 = take_copy(be, &cursor, w->fc1_w, I * D);
        c->fc2 = take_copy(be, &cursor, w->fc2_w, D * I);
        w->bf16 = c;
        v->xaa[l].q_bf16 = take_copy(be, &cursor, v->xaa[l].q_w, D * D);
    }
    v->fic_w = take_copy(be, &cursor, m->tasks->p->fic_w, (size_t)m->w.text.vocab * D);
}

static void free_view(tl_backend *be, decode_bf16 *v) {
    free(v->tower.layers);
    free(v->layer_copies);
    free(v->xaa);
    be->free(be, v->copies);
    free(v);
}

tl_status decode_bf16_open(tl_model *m, tl_error *err) {
    if (!(tl_model_capabilities(m) & (1u << TL_TASK_FIC))) return TL_OK;
    const clip_tower *t = &m->w.text.tower;
    decode_bf16 *v = calloc(1, sizeof *v);
    if (!v) return tl_fail(err, TL_ERR_NOMEM, "out of memory for the bfloat16 decoder");
    size_t layers = (size_t)t->n_layers;
    v->tower = *t;
    v->tower.layers = malloc(layers * sizeof *v->tower.layers);
    v->layer_copies = malloc(layers * sizeof *v->layer_copies);
    v->xaa = malloc(layers * sizeof *v->xaa);
    v->bytes = copy_elements(m) * sizeof(tl_bf16);
    v->copies = m->be->alloc(m->be, v->bytes);
    if (!v->tower.layers || !v->layer_copies || !v->xaa || !v->copies) {
        free_view(m->be, v);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for %zu MiB of bfloat16 decoder weights",
                       copy_elements(m) * sizeof(tl_bf16) >> 20);
    }
    memcpy(v->tower.layers, t->layers, layers * sizeof *t->layers);
    memcpy(v->xaa, m->tasks->p->text.xaa, layers * sizeof *v->xaa);
    bind_copies(m, v);
    m->tasks->bf16 = v;
    return TL_OK;
}

void decode_bf16_close(tl_model *m) {
    if (!m->tasks || !m->tasks->bf16) return;
    free_view(m->be, m->tasks->bf16);
    m->tasks->bf16 = NULL;
}
