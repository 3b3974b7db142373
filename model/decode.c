/* Caption decoding (MODEL.md §2 fic): the text decoder one position at a time with a
 * key/value cache per layer (self-attention K/V of every hypothesis, XAA K/V over the vision
 * memory computed once per caption), driven by beam.c's search; on the bfloat16 weights of
 * decode_bf16.c when the model has them. Not for: teacher forcing (towers.c), the search rule
 * (beam.c). */
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "beam.h"
#include "heads.h"
#include "tasks_internal.h"

typedef struct decoder {
    tl_model *m;
    const clip_tower *tower; /* the text tower: fp32, or the bfloat16 view */
    const xaa_params *xaa;   /* [L] text XAA, likewise */
    const tl_bf16 *fic_w;    /* the head's bfloat16 copy, or NULL */
    int L, D, Tmax, W, Tv, V;
    size_t cache_layer;     /* floats per layer: W·Tmax·D */
    float *k, *v, *spare;   /* [L, W, Tmax, D] self-attention cache (+ reorder target) */
    float *xk, *xv;         /* [L, Tv, D] XAA keys/values over the vision memory */
    float *x, *xp, *ln, *q; /* [W, D] step states */
    int32_t *rows;          /* [W] gather indices */
} decoder;

static void decoder_free(decoder *d) {
    free(d->rows);
}

/* floats rounded up to whole 64-byte lines. */
static size_t whole_lines(size_t floats) {
    return (floats + 15) & ~(size_t)15;
}

/* The next `floats` of *cursor. */
static float *carve(float **cursor, size_t floats) {
    float *p = *cursor;
    *cursor += floats;
    return p;
}

/* The buffers live in m's decoder arena, kept between captions (it grows to the largest beam
 * and length asked for): fresh memory for each caption cost about 4700 page faults (ViT-B/16,
 * 30 tokens), a tenth of the decoding time. */
static tl_status decoder_alloc(decoder *d, tl_model *m, int width, int max_tokens, tl_error *err) {
    memset(d, 0, sizeof *d);
    d->m = m;
    const decode_bf16 *bf16 = m->tasks->bf16;
    d->tower = bf16 ? &bf16->tower : &m->w.text.tower;
    d->xaa = bf16 ? bf16->xaa : m->tasks->p->text.xaa;
    d->fic_w = bf16 ? bf16->fic_w : NULL;
    d->L = m->w.text.tower.n_layers;
    d->D = m->w.text.tower.width;
    d->Tmax = max_tokens;
    d->W = width;
    d->Tv = m->w.vision.tokens;
    d->V = m->w.text.vocab;
    d->cache_layer = (size_t)width * max_tokens * d->D;
    size_t cache = whole_lines(d->L * d->cache_layer);
    size_t xkv = whole_lines((size_t)d->L * d->Tv * d->D),
           state = whole_lines((size_t)width * d->D);
    float *cursor =
        clip_arena_reserve(&m->scratch, &m->tasks->decoder, 3 * cache + 2 * xkv + 4 * state, err);
    if (!cursor) return TL_ERR_NOMEM;
    d->k = carve(&cursor, cache);
    d->v = carve(&cursor, cache);
    d->spare = carve(&cursor, cache);
    d->xk = carve(&cursor, xkv);
    d->xv = carve(&cursor, xkv);
    d->x = carve(&cursor, state);
    d->xp = carve(&cursor, state);
    d->ln = carve(&cursor, state);
    d->q = carve(&cursor, state);
    d->rows = malloc((size_t)width * sizeof *d->rows);
    if (d->rows) return TL_OK;
    return tl_fail(err, TL_ERR_NOMEM, "out of memory for the caption decoder");
}

/* XAA keys/values of every text layer over vision memory [L, 1, Tv, Dv]. */
static tl_status decoder_set_memory(decoder *d, const float *memory, tl_error *err) {
    tl_model *m = d->m;
    const xaa_params *xaa = d->xaa;
    size_t per_layer = (size_t)d->Tv * m->w.vision.tower.width, kv = (size_t)d->Tv * d->D;
    float *scratch = clip_arena_reserve(&m->scratch, &m->tasks->scratch,
                                        xaa_kv_scratch_floats(&xaa[0], d->Tv), err);
    if (!scratch) return TL_ERR_NOMEM;
    for (int l = 0; l < d->L; l++)
        xaa_kv_forward(m->be, &xaa[l], d->xk + l * kv, d->xv + l * kv, d->D, memory + l * per_layer,
                       d->Tv, NULL, scratch);
    return TL_OK;
}

/* xp = x + out_proj(MHSA(LN1(x))) for n hypotheses at position pos, appending this
 * position's K/V to layer l's cache. */
static void cached_self_attention(decoder *d, int l, int n, int pos) {
    tl_backend *be = d->m->be;
    const clip_tower *t = d->tower;
    const clip_layer_w *w = &t->layers[l];
    clip_layer_bf16 c = clip_layer_bf16_of(w);
    int D = d->D, ld_cache = d->Tmax * D;
    float *kc = d->k + l * d->cache_layer, *vc = d->v + l * d->cache_layer; /* [W, Tmax, D] */
    be->layernorm(be, d->ln, d->x, w->ln1_w, w->ln1_b, n, D, t->eps);
    tl_linear_prefer_bf16(be, d->q, 0, d->ln, 0, w->q_w, c.q, w->q_b, n, D, D, 0);
    tl_linear_prefer_bf16(be, kc + (size_t)pos * D, ld_cache, d->ln, 0, w->k_w, c.k, w->k_b, n, D,
                          D, 0);
    tl_linear_prefer_bf16(be, vc + (size_t)pos * D, ld_cache, d->ln, 0, w->v_w, c.v, w->v_b, n, D,
                          D, 0);
    for (int b = 0; b < n; b++) /* each hypothesis over its own positions 0..pos */
        be->attention(be, d->ln + (size_t)b * D, d->q + (size_t)b * D, D, kc + (size_t)b * ld_cache,
                      vc + (size_t)b * ld_cache, D, 1, 1, pos + 1, t->heads, t->head_dim, 0, NULL,
                      NULL);
    tl_linear_prefer_bf16(be, d->xp, 0, d->ln, 0, w->out_w, c.out, w->out_b, n, D, D, 0);
    be->axpy(be, d->xp, d->x, 1.0f, (size_t)n * D);
}

/* x = xp + MLP(LN2(xp)) + TSA_fic(xp) + XAA(xp, vision memory of layer l). */
static tl_status decoder_mlp_adapters(decoder *d, int l, int n, tl_error *err) {
    tl_model *m = d->m;
    const tailor_params *p = m->tasks->p;
    const adapter_params *tsa = &p->text.tsa[TL_TASK_FIC][l];
    const xaa_params *xaa = &d->xaa[l];
    size_t a = adapter_scratch_floats(tsa, n), x = xaa_attend_scratch_floats(xaa, 1, n);
    float *scratch = clip_arena_reserve(&m->scratch, &m->tasks->scratch, a > x ? a : x, err);
    if (!scratch) return TL_ERR_NOMEM;
    tl_status st =
        clip_layer_mlp_forward(m->be, d->tower, l, d->x, d->xp, n, 1, NULL, &m->scratch, err);
    if (st) return st;
    adapter_forward(m->be, tsa, d->x, d->xp, n, NULL, scratch);
    size_t kv = (size_t)d->Tv * d->D; /* all hypotheses share the image: one batch of n queries */
    xaa_attend_forward(m->be, xaa, d->x, d->xp, d->xk + l * kv, d->xv + l * kv, d->D, 1, n, d->Tv,
                       NULL, NULL, NULL, scratch);
    return TL_OK;
}

static tl_status decoder_step(void *ctx, const int32_t *tokens, int n, int pos, float *logits,
                              tl_error *err) {
    decoder *d = ctx;
    tl_model *m = d->m;
    const clip_text_w *tw = &m->w.text;
    m->be->gather_rows(m->be, d->x, tw->tok_emb, tokens, n, d->D);
    m->be->add_rows_periodic(m->be, d->x, tw->pos_emb + (size_t)pos * d->D, n, 1, d->D);
    for (int l = 0; l < d->L; l++) {
        cached_self_attention(d, l, n, pos);
        tl_status st = decoder_mlp_adapters(d, l, n, err);
        if (st) return st;
    }
    m->be->layernorm(m->be, d->ln, d->x, tw->final_ln_w, tw->final_ln_b, n, d->D, tw->tower.eps);
    fic_head_forward(m->be, m->tasks->p, d->fic_w, logits, d->ln, n, d->D, d->V);
    if (tasks_tracing(m)) {
        int dims[2] = {n, d->V};
        tasks_trace(m, logits, dims, 2, "caption.step%d.logits", pos);
    }
    return TL_OK;
}

/* Hypothesis b continues parent[b]: the caches are gathered (nothing to do for greedy). */
static void decoder_reorder(void *ctx, const int *parent, int n) {
    decoder *d = ctx;
    int identity = 1;
    for (int b = 0; b < n; b++) {
        d->rows[b] = parent[b];
        identity &= parent[b] == b;
    }
    if (identity) return;
    tl_backend *be = d->m->be;
    float **caches[2] = {&d->k, &d->v};
    for (int c = 0; c < 2; c++) {
        for (int l = 0; l < d->L; l++)
            be->gather_rows(be, d->spare + l * d->cache_layer, *caches[c] + l * d->cache_layer,
                            d->rows, n, d->Tmax * d->D);
        float *t = *caches[c];
        *caches[c] = d->spare;
        d->spare = t;
    }
}

tl_status fic_caption(tl_model *m, const float *pixels, int beam, int max_tokens, int32_t *ids,
                      int *n_ids, tl_error *err) {
    int L = m->w.text.tower.n_layers, Tv = m->w.vision.tokens;
    float *memory = clip_arena_reserve(&m->scratch, &m->tasks->memory,
                                       (size_t)L * Tv * m->w.vision.tower.width, err);
    if (!memory) return TL_ERR_NOMEM;
    tl_status st = task_vision_forward(m, TL_TASK_FIC, pixels, 1, NULL, memory, err);
    if (st) return st;
    decoder d;
    st = decoder_alloc(&d, m, beam, max_tokens, err);
    if (st) return st;
    st = decoder_set_memory(&d, memory, err);
    caption_search cs = {d.V, d.V - 2, d.V - 1, max_tokens, beam};
    caption_stepper stepper = {&d, decoder_step, decoder_reorder};
    if (!st) st = caption_search_run(&cs, &stepper, ids, n_ids, err);
    decoder_free(&d);
    return st;
}
