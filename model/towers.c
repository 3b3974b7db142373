/* The encoders in FAME-ViL's modes (MODEL.md §2): contrastive (each tower alone with TSA_task),
 * fusion (lock-step, XAA both ways) and generative (teacher forcing) in modes.c's order, from
 * clip.h's layer steps and adapter.h. Not for: cached caption decoding (decode.c) or the API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "heads.h"
#include "modes.h"
#include "tasks_internal.h"

/* One tower's state during a task forward. */
typedef struct stream {
    const clip_tower *tower;
    const adapter_params *tsa; /* [n_layers] or NULL */
    const xaa_params *xaa;     /* [n_layers] or NULL */
    const char *name;          /* "vision" / "text" in trace names */
    float *z, *zp;             /* [B, T, D]: layer input/output, z' */
    int B, T, causal;
} stream;

static float *reserve_scratch(tl_model *m, size_t floats, tl_error *err) {
    return clip_arena_reserve(&m->scratch, &m->tasks->scratch, floats, err);
}

/* zp = z + MHSA(LN1(z)). */
static tl_status stream_attn(tl_model *m, stream *s, int l, tl_error *err) {
    return clip_layer_attn_forward(m->be, s->tower, l, s->zp, s->z, s->B, s->T, s->causal, NULL,
                                   NULL, &m->scratch, err);
}

/* out = zp + MLP(LN2(zp)) + TSA(zp) (out may be s->z or another buffer, never s->zp). */
static tl_status stream_mlp_tsa(tl_model *m, stream *s, int l, float *out, tl_error *err) {
    tl_status st =
        clip_layer_mlp_forward(m->be, s->tower, l, out, s->zp, s->B, s->T, NULL, &m->scratch, err);
    if (st || !s->tsa) return st;
    int rows = s->B * s->T;
    float *scratch = reserve_scratch(m, adapter_scratch_floats(&s->tsa[l], rows), err);
    if (!scratch) return TL_ERR_NOMEM;
    adapter_forward(m->be, &s->tsa[l], out, s->zp, rows, NULL, scratch);
    return TL_OK;
}

/* s->z += XAA(s->zp, y [B, Ty, Dc]); traced as {prefix}{name}_xaa and _xaa_probs. */
static tl_status stream_xaa(tl_model *m, stream *s, int l, const float *y, int Ty,
                            const int *key_len, const char *prefix, tl_error *err) {
    const xaa_params *x = &s->xaa[l];
    int tracing = tasks_tracing(m), B = s->B, T = s->T;
    size_t out_n = (size_t)B * T * x->dq, probs_n = (size_t)B * x->heads * T * Ty;
    size_t need = xaa_scratch_floats(x, B, T, Ty) + (tracing ? out_n + probs_n : 0);
    float *scratch = reserve_scratch(m, need, err);
    if (!scratch) return TL_ERR_NOMEM;
    float *out = s->z, *probs = NULL, *rest = scratch;
    if (tracing) { /* the XAA term alone, then added */
        out = scratch;
        probs = scratch + out_n;
        rest = probs + probs_n;
        memset(out, 0, out_n * sizeof *out);
    }
    xaa_forward(m->be, x, out, s->zp, y, B, T, Ty, key_len, probs, NULL, rest);
    if (tracing) {
        int dims[4] = {B, T, x->dq}, pdims[4] = {B, x->heads, T, Ty};
        tasks_trace(m, out, dims, 3, "%s%s_xaa", prefix, s->name);
        tasks_trace(m, probs, pdims, 4, "%s%s_xaa_probs", prefix, s->name);
        m->be->axpy(m->be, s->z, out, 1.0f, out_n);
    }
    return TL_OK;
}

static void trace_state(const tl_model *m, const stream *s, const float *z, const char *what,
                        const char *prefix) {
    if (!tasks_tracing(m)) return;
    int dims[3] = {s->B, s->T, s->tower->width};
    tasks_trace(m, z, dims, 3, "%s%s", prefix, what);
}

static const adapter_params *tsa_of(const tower_adapters *t, int task) {
    return task >= 0 ? t->tsa[task] : NULL;
}

static stream vision_stream(const tl_model *m, const adapter_params *tsa, const xaa_params *xaa,
                            float *z, float *zp, int B) {
    return (stream){&m->w.vision.tower, tsa, xaa, "vision", z, zp, B, m->w.vision.tokens, 0};
}

/* T is set when the ids are packed (text_stream_start). */
static stream text_stream(const tl_model *m, const adapter_params *tsa, const xaa_params *xaa,
                          float *z, float *zp, int B) {
    return (stream){&m->w.text.tower, tsa, xaa, "text", z, zp, B, 0, 1};
}

/* Runs every layer of s alone (γ = 0). Layer l's output goes to memory + l·B·T·D when memory
 * is given (the next layer reads it there), else back into s->z. */
static tl_status stream_contrastive(tl_model *m, stream *s, int task, float *memory,
                                    tl_error *err) {
    size_t state = (size_t)s->B * s->T * s->tower->width;
    float *input = s->z;
    for (int l = 0; l < s->tower->n_layers; l++) {
        float *out = memory ? memory + l * state : s->z;
        s->z = input;
        tl_status st = stream_attn(m, s, l, err);
        if (!st) st = stream_mlp_tsa(m, s, l, out, err);
        if (st) return st;
        if (task >= 0 && tasks_tracing(m)) {
            char prefix[64];
            snprintf(prefix, sizeof prefix, "contrastive.%s.%s.layer%d.", tl_task_name(task),
                     s->name, l);
            trace_state(m, s, out, "out", prefix);
        }
        input = out;
    }
    s->z = input;
    return TL_OK;
}

tl_status task_vision_forward(tl_model *m, int task, const float *pixels, int B, float *embeds,
                              float *memory, tl_error *err) {
    const clip_vision_w *w = &m->w.vision;
    size_t n = (size_t)B * w->tokens * w->tower.width;
    float *state = clip_arena_reserve(&m->scratch, &m->tasks->state, 2 * n, err);
    if (!state) return TL_ERR_NOMEM;
    stream s = vision_stream(m, tsa_of(&m->tasks->p->vision, task), NULL, state, state + n, B);
    tl_status st = clip_vision_embed(m->be, w, s.z, pixels, B, NULL, &m->scratch, err);
    if (!st) st = stream_contrastive(m, &s, task, memory, err);
    if (!st && embeds) st = clip_vision_head(m->be, w, s.z, B, NULL, embeds, &m->scratch, err);
    return st;
}

/* Packs ids and embeds them into s->z; s->T and eos are set. The caller frees *packed. */
static tl_status text_stream_start(tl_model *m, stream *s, const int32_t *ids, int stride, int *eos,
                                   tl_error *err) {
    int32_t *packed = malloc((size_t)s->B * stride * sizeof *packed);
    if (!packed) return tl_fail(err, TL_ERR_NOMEM, "out of memory for token ids");
    tl_status st = clip_text_pack_ids(&m->w.text, ids, stride, s->B, packed, eos, &s->T, err);
    if (!st) clip_text_embed(m->be, &m->w.text, s->z, packed, s->B, s->T);
    free(packed);
    return st;
}

tl_status task_text_forward(tl_model *m, int task, const int32_t *ids, int ids_stride, int B,
                            float *embeds, tl_error *err) {
    const clip_text_w *w = &m->w.text;
    size_t n = (size_t)B * w->positions * w->tower.width;
    float *state = clip_arena_reserve(&m->scratch, &m->tasks->state, 2 * n, err);
    if (!state) return TL_ERR_NOMEM;
    int *eos = malloc((size_t)B * sizeof *eos);
    if (!eos) return tl_fail(err, TL_ERR_NOMEM, "out of memory for text");
    stream s = text_stream(m, tsa_of(&m->tasks->p->text, task), NULL, state, state + n, B);
    tl_status st = text_stream_start(m, &s, ids, ids_stride, eos, err);
    if (!st) st = stream_contrastive(m, &s, task, NULL, err);
    if (!st) st = clip_text_head(m->be, w, s.z, B, s.T, eos, NULL, embeds, &m->scratch, err);
    free(eos);
    return st;
}

/* The streams of a fusion or generative forward, for modes.c's step order. */
typedef struct mode_run {
    tl_model *m;
    stream *s[2];         /* by mode_stream (no vision stream in generative mode) */
    const int *text_keys; /* fusion: the text keys vision queries see */
    const float *memory;  /* generative: [L, B, Tv, Dv] vision layer outputs; else NULL */
    int Tv;
    char prefix[64]; /* of trace names */
    tl_error *err;
} mode_run;

/* z' of stream i, traced as {prefix}{name}_z_prime. */
static tl_status run_attn(void *ctx, mode_stream i, int l) {
    mode_run *r = ctx;
    stream *s = r->s[i];
    tl_status st = stream_attn(r->m, s, l, r->err);
    char what[32];
    snprintf(what, sizeof what, "%s_z_prime", s->name);
    if (!st) trace_state(r->m, s, s->zp, what, r->prefix);
    return st;
}

static tl_status run_mlp_tsa(void *ctx, mode_stream i, int l) {
    mode_run *r = ctx;
    return stream_mlp_tsa(r->m, r->s[i], l, r->s[i]->z, r->err);
}

/* XAA of stream i over the other stream's z' (fusion) or vision layer l's output. */
static tl_status run_xaa(void *ctx, mode_stream i, int l) {
    mode_run *r = ctx;
    stream *s = r->s[i];
    if (r->memory) {
        size_t per_layer = (size_t)s->B * r->Tv * r->m->w.vision.tower.width;
        return stream_xaa(r->m, s, l, r->memory + l * per_layer, r->Tv, NULL, r->prefix, r->err);
    }
    const stream *y = r->s[MODE_TEXT - i];
    const int *keys = i == MODE_VISION ? r->text_keys : NULL;
    return stream_xaa(r->m, s, l, y->zp, y->T, keys, r->prefix, r->err);
}

static const mode_steps inference_steps = {run_attn, run_mlp_tsa, run_xaa};

/* Every fusion layer (modes.c's order; vision queries see text keys 0..EOS). */
static tl_status fusion_layers(tl_model *m, stream *v, stream *t, const int *text_keys, int task,
                               tl_error *err) {
    mode_run r = {m, {v, t}, text_keys, NULL, 0, "", err};
    for (int l = 0; l < v->tower->n_layers; l++) {
        snprintf(r.prefix, sizeof r.prefix, "fusion.%s.layer%d.", tl_task_name(task), l);
        tl_status st = mode_fusion_layer(&inference_steps, &r, l);
        if (st) return st;
        trace_state(m, v, v->z, "vision_out", r.prefix);
        trace_state(m, t, t->z, "text_out", r.prefix);
    }
    return TL_OK;
}

/* fused = projected CLS + projected EOS of the fusion streams (either output may be NULL). */
static tl_status fusion_heads(tl_model *m, const stream *v, const stream *t, const int *eos,
                              float *image_embeds, float *text_embeds, float *fused,
                              tl_error *err) {
    size_t n = (size_t)v->B * m->w.projection_dim;
    float *v_out = image_embeds ? image_embeds : fused, *t_out = text_embeds;
    if (!t_out && !(t_out = reserve_scratch(m, n, err))) return TL_ERR_NOMEM;
    tl_status st = clip_vision_head(m->be, &m->w.vision, v->z, v->B, NULL, v_out, &m->scratch, err);
    if (!st)
        st =
            clip_text_head(m->be, &m->w.text, t->z, t->B, t->T, eos, NULL, t_out, &m->scratch, err);
    if (st) return st;
    if (v_out != fused) memcpy(fused, v_out, n * sizeof *fused);
    m->be->axpy(m->be, fused, t_out, 1.0f, n);
    return TL_OK;
}

tl_status task_fusion_forward(tl_model *m, int task, const float *pixels, const int32_t *ids,
                              int ids_stride, int B, float *image_embeds, float *text_embeds,
                              float *fused, tl_error *err) {
    const tailor_params *p = m->tasks->p;
    size_t nv = (size_t)B * m->w.vision.tokens * m->w.vision.tower.width;
    size_t nt = (size_t)B * m->w.text.positions * m->w.text.tower.width;
    float *state = clip_arena_reserve(&m->scratch, &m->tasks->state, 2 * (nv + nt), err);
    if (!state) return TL_ERR_NOMEM;
    int *eos = calloc(2 * (size_t)B, sizeof *eos), *text_keys = eos + B; /* [B] each */
    if (!eos) return tl_fail(err, TL_ERR_NOMEM, "out of memory (fusion)");
    stream v = vision_stream(m, p->vision.tsa[task], p->vision.xaa, state, state + nv, B);
    stream t =
        text_stream(m, p->text.tsa[task], p->text.xaa, state + 2 * nv, state + 2 * nv + nt, B);
    tl_status st = clip_vision_embed(m->be, &m->w.vision, v.z, pixels, B, NULL, &m->scratch, err);
    if (!st) st = text_stream_start(m, &t, ids, ids_stride, eos, err);
    for (int b = 0; b < B && !st; b++) text_keys[b] = eos[b] + 1;
    if (!st) st = fusion_layers(m, &v, &t, text_keys, task, err);
    if (!st) st = fusion_heads(m, &v, &t, eos, image_embeds, text_embeds, fused, err);
    free(eos);
    return st;
}

/* Text layers of the generative mode on s (embedded ids): causal, TSA_fic and the XAA of
 * layer l reading vision layer l's output memory[l] (no mask). */
static tl_status generative_text_layers(tl_model *m, stream *s, const float *memory, int Tv,
                                        tl_error *err) {
    mode_run r = {m, {NULL, s}, NULL, memory, Tv, "", err};
    for (int l = 0; l < s->tower->n_layers; l++) {
        snprintf(r.prefix, sizeof r.prefix, "generative.layer%d.", l);
        tl_status st = mode_generative_layer(&inference_steps, &r, l);
        if (st) return st;
        trace_state(m, s, s->z, "text_out", r.prefix);
    }
    return TL_OK;
}

static void trace_memory(const tl_model *m, const float *memory, int B, int Tv) {
    int D = m->w.vision.tower.width, dims[3] = {B, Tv, D};
    for (int l = 0; l < m->w.vision.tower.n_layers && tasks_tracing(m); l++)
        tasks_trace(m, memory + (size_t)l * B * Tv * D, dims, 3, "generative.vision_memory.layer%d",
                    l);
}

tl_status fic_teacher_forward(tl_model *m, const float *pixels, const int32_t *ids, int B, int T,
                              float *hidden, float *logits, tl_error *err) {
    const clip_text_w *tw = &m->w.text;
    const tailor_params *p = m->tasks->p;
    int Tv = m->w.vision.tokens, D = tw->tower.width, L = tw->tower.n_layers;
    for (size_t i = 0; i < (size_t)B * T; i++)
        if (ids[i] < 0 || ids[i] >= tw->vocab)
            return tl_fail(err, TL_ERR_INVALID, "caption ids: id %d outside 0..%d", ids[i],
                           tw->vocab - 1);
    size_t mem_n = (size_t)L * B * Tv * m->w.vision.tower.width;
    float *memory = clip_arena_reserve(&m->scratch, &m->tasks->memory, mem_n, err);
    if (!memory) return TL_ERR_NOMEM;
    tl_status st = task_vision_forward(m, TL_TASK_FIC, pixels, B, NULL, memory, err);
    if (st) return st;
    trace_memory(m, memory, B, Tv);
    size_t n = (size_t)B * T * D;
    float *state = clip_arena_reserve(&m->scratch, &m->tasks->state, 3 * n, err);
    if (!state) return TL_ERR_NOMEM;
    stream s = text_stream(m, p->text.tsa[TL_TASK_FIC], p->text.xaa, state, state + n, B);
    s.T = T;
    clip_text_embed(m->be, tw, s.z, ids, B, T);
    st = generative_text_layers(m, &s, memory, Tv, err);
    if (st) return st;
    float *h = hidden ? hidden : state + 2 * n; /* [B, T, Dt] */
    m->be->layernorm(m->be, h, s.z, tw->final_ln_w, tw->final_ln_b, B * T, D, tw->tower.eps);
    fic_head_forward(m->be, p, NULL, logits, h, B * T, D, tw->vocab);
    return TL_OK;
}
