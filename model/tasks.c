/* The public FAME-ViL calls of tailor_model.h ("Tasks"): capabilities, task embeddings,
 * composition, classification and captioning, with zero-shot fallbacks where MODEL.md allows.
 * Batching, tokenizing and checks live here; the arithmetic is in towers.c and decode.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heads.h"
#include "tasks_internal.h"

#define MAX_BEAM         16 /* the caches grow with the width */
#define ZERO_SHOT_PROMPT "a photo of a %s"

/* ---- state, capabilities, tracing ---- */

tl_status tasks_open(tl_model *m, tl_error *err) {
    tl_tasks *t = calloc(1, sizeof *t);
    if (!t) return tl_fail(err, TL_ERR_NOMEM, "out of memory for the task state");
    tl_status st = tailor_params_load(&t->p, &m->cfg, m->st, err);
    if (st) {
        free(t);
        return st;
    }
    m->tasks = t;
    return TL_OK;
}

void tasks_close(tl_model *m) {
    tl_tasks *t = m->tasks;
    if (!t) return;
    m->be->free(m->be, t->state.p);
    m->be->free(m->be, t->memory.p);
    m->be->free(m->be, t->scratch.p);
    m->be->free(m->be, t->decoder.p);
    decode_bf16_close(m);
    tailor_params_free(t->p);
    free(t);
    m->tasks = NULL;
}

void tl_model_set_trace(tl_model *m, tl_trace_fn fn, void *ctx) {
    m->tasks->trace = fn;
    m->tasks->trace_ctx = ctx;
}

int tasks_tracing(const tl_model *m) {
    return m->tasks->trace != NULL;
}

void tasks_trace(const tl_model *m, const float *data, const int *dims, int ndim, const char *fmt,
                 ...) {
    if (!m->tasks->trace) return;
    char name[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    m->tasks->trace(m->tasks->trace_ctx, name, data, dims, ndim);
}

/* Parts each task needs; names of the parts for messages. */
static const unsigned task_parts[TL_TASK_COUNT] = {
    [TL_TASK_XMR] = TL_PART_TSA_XMR | TL_PART_HEAD_XMR,
    [TL_TASK_TGIR] = TL_PART_TSA_TGIR | TL_PART_XAA | TL_PART_HEAD_TGIR,
    [TL_TASK_SCR] = TL_PART_TSA_SCR | TL_PART_XAA | TL_PART_HEAD_SCR,
    [TL_TASK_FIC] = TL_PART_TSA_FIC | TL_PART_XAA | TL_PART_HEAD_FIC,
};
static const char *const part_names[] = {
    "xmr adapters", "tgir adapters", "scr adapters", "fic adapters", "cross-attention adapters",
    "xmr head",     "tgir head",     "scr head",     "fic head",
};
static const char *const task_uses[TL_TASK_COUNT] = {"xmr task embeddings", "composition (tgir)",
                                                     "classification (scr head)", "captioning"};

unsigned tl_model_capabilities(const tl_model *m) {
    unsigned caps = 0;
    for (int t = 0; t < TL_TASK_COUNT; t++)
        if ((m->tasks->p->parts & task_parts[t]) == task_parts[t]) caps |= 1u << t;
    if (m->ntm && m->ntm->cfg.kind == NTM_KIND_CASCADE) caps |= TL_CAP_NTM;
    return caps;
}

/* TL_ERR_UNAVAILABLE naming what `use` needs and the checkpoint lacks, unless it has parts. */
static tl_status require_parts(const tl_model *m, unsigned parts, const char *use, tl_error *err) {
    unsigned missing = parts & ~m->tasks->p->parts;
    if (!missing) return TL_OK;
    char list[256] = "";
    for (unsigned i = 0; i < sizeof part_names / sizeof part_names[0]; i++)
        if (missing & (1u << i))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                     part_names[i]);
    return tl_fail(err, TL_ERR_UNAVAILABLE, "%s not available: checkpoint has no %s", use, list);
}

static tl_status require_task(const tl_model *m, tl_task task, tl_error *err) {
    return require_parts(m, task_parts[task], task_uses[task], err);
}

float tl_task_head_scale(const tl_model *m, tl_task task) {
    if (task != TL_TASK_XMR && task != TL_TASK_TGIR) return 0.0f;
    return m->tasks->p->parts & (TL_PART_HEAD_XMR << task) ? m->tasks->p->head_scale[task] : 0.0f;
}

int tl_scr_labels(const tl_model *m, const char *const **labels) {
    const tailor_params *p = m->tasks->p;
    int has = (p->parts & TL_PART_HEAD_SCR) != 0;
    *labels = has ? (const char *const *)p->scr_labels : NULL;
    return has ? p->scr_classes : 0;
}

/* ---- inputs ---- */

static int min_int(int a, int b) {
    return a < b ? a : b;
}

/* Preprocesses images[0..B) into m->pixels. */
static tl_status preprocess_rows(tl_model *m, const tl_image *images, int B, tl_error *err) {
    size_t per_item = 3 * (size_t)m->info.image_size * m->info.image_size;
    for (int b = 0; b < B; b++) {
        tl_status st = tl_preprocess_image(m, &images[b], m->pixels + b * per_item, err);
        if (st) return tl_error_prefix(err, "image %d", b);
    }
    return TL_OK;
}

/* ---- embeddings ---- */

static tl_status check_embedding_task(const tl_model *m, tl_task task, tl_error *err) {
    if (task != TL_TASK_XMR && task != TL_TASK_TGIR)
        return tl_fail(err, TL_ERR_INVALID, "task embeddings are for xmr and tgir, not %s",
                       tl_task_name(task) ? tl_task_name(task) : "an unknown task");
    return require_parts(m, TL_PART_TSA_XMR << task, "task embeddings", err);
}

tl_status tl_embed_texts_task(tl_model *m, tl_task task, const char *const *texts, int n,
                              float *out, tl_error *err) {
    tl_status st = check_embedding_task(m, task, err);
    if (!st) st = model_check_batch(n, texts, "texts", err);
    int P = m->w.projection_dim, ctx = m->info.context_length;
    for (int i = 0; i < n && !st; i += TL_TEXT_CHUNK) {
        int B = min_int(TL_TEXT_CHUNK, n - i);
        float *rows = out + (size_t)i * P;
        st = model_tokenize_texts(m, texts + i, i, B, m->ids, err);
        if (!st) st = task_text_forward(m, task, m->ids, ctx, B, rows, err);
        if (!st) m->be->l2_normalize(m->be, rows, B, P);
        if (st) tl_error_prefix(err, "texts %d..%d", i, i + B - 1);
    }
    return st;
}

tl_status tl_embed_images_task(tl_model *m, tl_task task, const tl_image *images, int n, float *out,
                               tl_error *err) {
    tl_status st = check_embedding_task(m, task, err);
    if (!st) st = model_check_batch(n, images, "images", err);
    int P = m->w.projection_dim;
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        float *rows = out + (size_t)i * P;
        st = preprocess_rows(m, images + i, B, err);
        if (!st) st = task_vision_forward(m, task, m->pixels, B, rows, NULL, err);
        if (!st) m->be->l2_normalize(m->be, rows, B, P);
        if (st) tl_error_prefix(err, "images %d..%d", i, i + B - 1);
    }
    return st;
}

/* ---- composition ---- */

static tl_status compose_zero_shot(tl_model *m, const tl_image *refs, const char *const *texts,
                                   int n, float *out, tl_error *err) {
    int P = m->w.projection_dim;
    float *t = malloc((size_t)n * P * sizeof *t);
    if (!t) return tl_fail(err, TL_ERR_NOMEM, "out of memory composing %d queries", n);
    tl_status st = tl_embed_images(m, refs, n, out, err);
    if (!st) st = tl_embed_texts(m, texts, n, t, err);
    if (!st) m->be->axpy(m->be, out, t, 1.0f, (size_t)n * P);
    if (!st) m->be->l2_normalize(m->be, out, n, P);
    free(t);
    return st;
}

tl_status tl_compose(tl_model *m, const tl_image *refs, const char *const *texts, int n, float *out,
                     tl_error *err) {
    tl_status st = model_check_batch(n, refs, "compose", err);
    if (!st) st = model_check_batch(n, texts, "compose", err);
    if (st || !(tl_model_capabilities(m) & TL_CAP_TGIR))
        return st ? st : compose_zero_shot(m, refs, texts, n, out, err);
    int P = m->w.projection_dim, ctx = m->info.context_length;
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        float *rows = out + (size_t)i * P;
        st = preprocess_rows(m, refs + i, B, err);
        if (!st) st = model_tokenize_texts(m, texts + i, i, B, m->ids, err);
        if (!st)
            st = task_fusion_forward(m, TL_TASK_TGIR, m->pixels, m->ids, ctx, B, NULL, NULL, rows,
                                     err);
        if (!st) m->be->l2_normalize(m->be, rows, B, P); /* n(σ·n(f)) = n(f) */
        if (st) tl_error_prefix(err, "pairs %d..%d", i, i + B - 1);
    }
    return st;
}

/* ---- classification ---- */

static int labels_are_head_labels(const tailor_params *p, const char *const *labels, int n) {
    if (n != p->scr_classes) return 0;
    for (int i = 0; i < n; i++)
        if (!labels[i] || strcmp(labels[i], p->scr_labels[i]) != 0) return 0;
    return 1;
}

static tl_status classify_head(tl_model *m, const tl_image *image, const char *text, float *probs,
                               tl_error *err) {
    int P = m->w.projection_dim;
    float *fused = malloc((size_t)P * sizeof *fused);
    if (!fused) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = preprocess_rows(m, image, 1, err);
    if (!st) st = model_tokenize_texts(m, &text, 0, 1, m->ids, err);
    if (!st)
        st = task_fusion_forward(m, TL_TASK_SCR, m->pixels, m->ids, m->info.context_length, 1, NULL,
                                 NULL, fused, err);
    if (!st) scr_head_forward(m->be, m->tasks->p, probs, fused, 1, P, 1);
    free(fused);
    return st;
}

/* softmax(exp(logit_scale) · cos(image, "a photo of a {label}")) over the labels. */
static tl_status classify_zero_shot(tl_model *m, const tl_image *image, const char *const *labels,
                                    int n, float *probs, tl_error *err) {
    int P = m->w.projection_dim;
    char **prompts = calloc((size_t)n, sizeof *prompts);
    float *emb = malloc((size_t)(n + 1) * P * sizeof *emb); /* image, then the prompts */
    if (!prompts || !emb) {
        free(prompts);
        free(emb);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for %d labels", n);
    }
    tl_status st = TL_OK;
    for (int i = 0; i < n && !st; i++) {
        if (!labels[i]) {
            st = tl_fail(err, TL_ERR_INVALID, "label %d is NULL", i);
        } else if (asprintf(&prompts[i], ZERO_SHOT_PROMPT, labels[i]) < 0) {
            prompts[i] = NULL;
            st = tl_fail(err, TL_ERR_NOMEM, "out of memory");
        }
    }
    if (!st) st = tl_embed_images(m, image, 1, emb, err);
    if (!st) st = tl_embed_texts(m, (const char *const *)prompts, n, emb + P, err);
    if (!st) {
        m->be->linear(m->be, probs, 0, emb, 0, emb + P, NULL, 1, P, n, 0);
        for (int i = 0; i < n; i++) probs[i] *= tl_model_logit_scale(m);
        m->be->softmax(m->be, probs, 1, n);
    }
    for (int i = 0; i < n; i++) free(prompts[i]);
    free(prompts);
    free(emb);
    return st;
}

tl_status tl_classify(tl_model *m, const tl_image *image, const char *text,
                      const char *const *labels, int n_labels, float *probs, tl_error *err) {
    if (!image || !text) return tl_fail(err, TL_ERR_INVALID, "classify: image and text are needed");
    int has_head = (tl_model_capabilities(m) & TL_CAP_SCR) != 0;
    if (!labels) { /* without an scr head, only labels given by the caller allow zero-shot */
        tl_status st = require_task(m, TL_TASK_SCR, err);
        return st ? st : classify_head(m, image, text, probs, err);
    }
    if (n_labels < 1 || n_labels > TL_MODEL_MAX_BATCH)
        return tl_fail(err, TL_ERR_INVALID, "classify: %d labels (1..%d)", n_labels,
                       TL_MODEL_MAX_BATCH);
    if (has_head && labels_are_head_labels(m->tasks->p, labels, n_labels))
        return classify_head(m, image, text, probs, err);
    return classify_zero_shot(m, image, labels, n_labels, probs, err);
}

/* ---- captions and lower-level calls ---- */

tl_status tl_caption_pixels(tl_model *m, const float *pixels, const tl_caption_opts *opts,
                            int32_t *ids, int ids_cap, int *n_ids, tl_error *err) {
    *n_ids = 0;
    tl_status st = require_task(m, TL_TASK_FIC, err);
    if (st) return st;
    int ctx = m->info.context_length;
    int beam = opts && opts->beam > 1 ? opts->beam : 1;
    int max_tokens = opts && opts->max_tokens > 0 ? opts->max_tokens : ctx;
    if (beam > MAX_BEAM) return tl_fail(err, TL_ERR_LIMIT, "beam width %d > %d", beam, MAX_BEAM);
    if (max_tokens < 2 || max_tokens > ctx)
        return tl_fail(err, TL_ERR_INVALID, "caption length limit %d outside 2..%d", max_tokens,
                       ctx);
    if (ids_cap < max_tokens)
        return tl_fail(err, TL_ERR_LIMIT, "caption buffer of %d ids < the limit %d", ids_cap,
                       max_tokens);
    return fic_caption(m, pixels, beam, max_tokens, ids, n_ids, err);
}

tl_status tl_caption(tl_model *m, const tl_image *image, const tl_caption_opts *opts, int32_t *ids,
                     int ids_cap, int *n_ids, char *text, size_t text_cap, tl_error *err) {
    *n_ids = 0;
    if (text && text_cap) text[0] = '\0';
    tl_status st = require_task(m, TL_TASK_FIC, err);
    if (!st) st = preprocess_rows(m, image, 1, err);
    if (!st) st = tl_caption_pixels(m, m->pixels, opts, ids, ids_cap, n_ids, err);
    if (st || !text || !m->tok || tok_vocab_size(m->tok) != m->w.text.vocab) return st;
    return tok_decode(m->tok, ids, *n_ids, text, text_cap, err);
}

tl_status tl_encode_pixels_task(tl_model *m, int task, const float *pixels, int n, float *embeds,
                                tl_error *err) {
    if (task < 0) return tl_encode_pixels(m, pixels, n, NULL, embeds, err);
    if (!tl_task_name(task)) return tl_fail(err, TL_ERR_INVALID, "unknown task %d", task);
    tl_status st = require_parts(m, TL_PART_TSA_XMR << task, "task encoding", err);
    if (!st) st = model_check_batch(n, pixels, "pixels", err);
    size_t per_item = 3 * (size_t)m->info.image_size * m->info.image_size;
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        st = task_vision_forward(m, task, pixels + i * per_item, B,
                                 embeds + (size_t)i * m->w.projection_dim, NULL, err);
    }
    return st;
}

tl_status tl_encode_text_ids_task(tl_model *m, int task, const int32_t *ids, int ids_stride, int n,
                                  float *embeds, tl_error *err) {
    if (task < 0) return tl_encode_text_ids(m, ids, ids_stride, n, NULL, embeds, err);
    if (!tl_task_name(task)) return tl_fail(err, TL_ERR_INVALID, "unknown task %d", task);
    tl_status st = require_parts(m, TL_PART_TSA_XMR << task, "task encoding", err);
    if (!st) st = model_check_batch(n, ids, "text ids", err);
    for (int i = 0; i < n && !st; i += TL_TEXT_CHUNK) {
        int B = min_int(TL_TEXT_CHUNK, n - i);
        st = task_text_forward(m, task, ids + (size_t)i * ids_stride, ids_stride, B,
                               embeds + (size_t)i * m->w.projection_dim, err);
    }
    return st;
}

tl_status tl_fuse_ids(tl_model *m, tl_task task, const float *pixels, const int32_t *ids,
                      int ids_stride, int n, float *image_embeds, float *text_embeds, float *fused,
                      tl_error *err) {
    if (task != TL_TASK_TGIR && task != TL_TASK_SCR)
        return tl_fail(err, TL_ERR_INVALID, "fusion mode is for tgir and scr");
    tl_status st = require_parts(m, (TL_PART_TSA_XMR << task) | TL_PART_XAA, "fusion", err);
    if (!st) st = model_check_batch(n, pixels, "fusion pairs", err);
    size_t per_item = 3 * (size_t)m->info.image_size * m->info.image_size;
    size_t P = (size_t)m->w.projection_dim;
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        st = task_fusion_forward(m, task, pixels + i * per_item, ids + (size_t)i * ids_stride,
                                 ids_stride, B, image_embeds ? image_embeds + i * P : NULL,
                                 text_embeds ? text_embeds + i * P : NULL, fused + i * P, err);
    }
    return st;
}

tl_status tl_scr_logits(tl_model *m, const float *fused, int n, float *logits, tl_error *err) {
    tl_status st = require_parts(m, TL_PART_HEAD_SCR, "scr logits", err);
    if (!st) st = model_check_batch(n, fused, "fused vectors", err);
    if (!st) scr_head_forward(m->be, m->tasks->p, logits, fused, n, m->w.projection_dim, 0);
    return st;
}

tl_status tl_fic_forward(tl_model *m, const float *pixels, const int32_t *ids, int T, int n,
                         float *hidden, float *logits, tl_error *err) {
    tl_status st = require_task(m, TL_TASK_FIC, err);
    if (!st) st = model_check_batch(n, pixels, "captions", err);
    if (!st && (T < 1 || T > m->info.context_length))
        st = tl_fail(err, TL_ERR_INVALID, "caption length %d outside 1..%d", T,
                     m->info.context_length);
    size_t per_item = 3 * (size_t)m->info.image_size * m->info.image_size;
    size_t D = (size_t)m->w.text.tower.width, V = (size_t)m->w.text.vocab;
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        size_t row = (size_t)i * T;
        st = fic_teacher_forward(m, pixels + i * per_item, ids + row, B, T,
                                 hidden ? hidden + row * D : NULL, logits + row * V, err);
    }
    return st;
}
