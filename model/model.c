/* The public engine API (tailor_model.h): opens a checkpoint directory (config, mapped weights,
 * optional tokenizer, backend), validates every caller input, runs the CLIP towers in bounded
 * chunks and L2-normalises embeddings. Not for: the tower arithmetic (clip.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_internal.h"
#include "tasks_internal.h"

static tl_status open_backend(tl_model *m, const tl_model_opts *opts, tl_error *err) {
    const char *name = opts && opts->backend ? opts->backend : "cpu";
    int threads = opts ? opts->n_threads : 0;
    if (!strcmp(name, "cpu")) return tl_backend_cpu_create(&m->be, threads, err);
    if (!strcmp(name, "cuda")) return tl_backend_cuda_create(&m->be, 0, err);
    return tl_fail(err, TL_ERR_INVALID, "unknown backend \"%s\" (cpu or cuda)", name);
}

/* Loads DIR/vocab.json + DIR/merges.txt when both exist; the model works without them. */
static tl_status open_tokenizer(tl_model *m, const char *dir, tl_error *err) {
    char vocab[4096], merges[4096];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    if (access(vocab, F_OK) || access(merges, F_OK)) return TL_OK;
    tl_status st = tok_load_dir(&m->tok, dir, err);
    if (st) return st;
    if (tok_vocab_size(m->tok) > m->cfg.text.vocab_size)
        return tl_fail(err, TL_ERR_FORMAT,
                       "vocab.json has %d tokens but text_config.vocab_size is %d",
                       tok_vocab_size(m->tok), m->cfg.text.vocab_size);
    return TL_OK;
}

static void fill_info(tl_model *m) {
    const clip_config *c = &m->cfg;
    m->info = (tl_model_info){
        .projection_dim = c->projection_dim,
        .image_size = c->vision.image_size,
        .context_length = c->text.max_position_embeddings,
        .vocab_size = c->text.vocab_size,
        .vision_width = c->vision.tower.hidden_size,
        .vision_layers = c->vision.tower.num_hidden_layers,
        .vision_heads = c->vision.tower.num_attention_heads,
        .text_width = c->text.tower.hidden_size,
        .text_layers = c->text.tower.num_hidden_layers,
        .text_heads = c->text.tower.num_attention_heads,
        .has_tokenizer = m->tok != NULL,
    };
}

static tl_status alloc_buffers(tl_model *m, tl_error *err) {
    size_t S = (size_t)m->cfg.vision.image_size;
    m->pixels = m->be->alloc(m->be, TL_VISION_CHUNK * 3 * S * S * sizeof(float));
    m->ids = malloc((size_t)TL_TEXT_CHUNK * m->cfg.text.max_position_embeddings * sizeof *m->ids);
    if (!m->pixels || !m->ids) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    return TL_OK;
}

static tl_status open_parts(tl_model *m, const char *dir, const tl_model_opts *opts,
                            tl_error *err) {
    tl_status st = clip_config_load_dir(&m->cfg, dir, err);
    if (!st) st = st_open_dir(&m->st, dir, err);
    if (!st) st = clip_bind(&m->w, m->st, &m->cfg, err);
    if (!st) st = open_tokenizer(m, dir, err);
    if (!st) st = open_backend(m, opts, err);
    if (!st) {
        clip_scratch_init(&m->scratch, m->be);
        st = alloc_buffers(m, err);
    }
    if (!st) st = tasks_open(m, err);
    return st;
}

/* *out owned by the caller (tl_model_close). */
tl_status tl_model_open(tl_model **out, const char *dir, const tl_model_opts *opts, tl_error *err) {
    *out = NULL;
    tl_model *m = calloc(1, sizeof *m);
    if (!m) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = open_parts(m, dir, opts, err);
    if (st) {
        tl_error_prefix(err, "%s", dir);
        tl_model_close(m);
        return st;
    }
    fill_info(m);
    *out = m;
    return TL_OK;
}

void tl_model_close(tl_model *m) {
    if (!m) return;
    if (m->be) {
        tasks_close(m);
        clip_scratch_free(&m->scratch);
        m->be->free(m->be, m->pixels);
        m->be->destroy(m->be);
    }
    free(m->ids);
    clip_weights_free(&m->w);
    tok_free(m->tok);
    st_close(m->st);
    clip_config_free(&m->cfg);
    free(m);
}

const tl_model_info *tl_model_get_info(const tl_model *m) {
    return &m->info;
}

float tl_model_logit_scale(const tl_model *m) {
    return expf(m->w.logit_scale);
}

static tl_status check_batch(int n, const void *in, const char *what, tl_error *err) {
    if (n < 0 || (n > 0 && !in))
        return tl_fail(err, TL_ERR_INVALID, "%s: bad batch (n = %d)", what, n);
    if (n > TL_MODEL_MAX_BATCH)
        return tl_fail(err, TL_ERR_LIMIT, "%s: batch of %d exceeds the limit %d", what, n,
                       TL_MODEL_MAX_BATCH);
    return TL_OK;
}

static int min_int(int a, int b) {
    return a < b ? a : b;
}

/* ---- text ---- */

tl_status tl_encode_text_ids(tl_model *m, const int32_t *ids, int ids_stride, int n, float *pooled,
                             float *embeds, tl_error *err) {
    tl_status st = check_batch(n, ids, "text ids", err);
    if (st) return st;
    if (ids_stride < 1) return tl_fail(err, TL_ERR_INVALID, "text ids: stride %d", ids_stride);
    int D = m->w.text.tower.width, P = m->w.projection_dim;
    for (int i = 0; i < n && !st; i += TL_TEXT_CHUNK) {
        int B = min_int(TL_TEXT_CHUNK, n - i);
        st =
            clip_text_forward(m->be, &m->w.text, ids + (size_t)i * ids_stride, ids_stride, B,
                              pooled ? pooled + (size_t)i * D : NULL,
                              embeds ? embeds + (size_t)i * P : NULL, &m->scratch, NULL, NULL, err);
        if (st) tl_error_prefix(err, "texts %d..%d", i, i + B - 1);
    }
    return st;
}

/* Every text non-NULL and within the tokenizer's byte limit. */
static tl_status check_texts(const char *const *texts, int n, tl_error *err) {
    for (int i = 0; i < n; i++) {
        if (!texts[i]) return tl_fail(err, TL_ERR_INVALID, "text %d is NULL", i);
        if (strnlen(texts[i], TOK_MAX_TEXT_BYTES + 1) > TOK_MAX_TEXT_BYTES)
            return tl_fail(err, TL_ERR_LIMIT, "text %d is longer than %u bytes", i,
                           TOK_MAX_TEXT_BYTES);
    }
    return TL_OK;
}

/* Tokenizes texts[0..B) (checked) into m->ids rows of the context length, 0-padded. */
static tl_status tokenize_chunk(tl_model *m, const char *const *texts, int first, int B,
                                tl_error *err) {
    int ctx = m->info.context_length;
    memset(m->ids, 0, (size_t)B * ctx * sizeof *m->ids);
    for (int b = 0; b < B; b++) {
        int n_ids;
        if (tok_encode(m->tok, texts[b], strlen(texts[b]), ctx, m->ids + (size_t)b * ctx, &n_ids,
                       err))
            return tl_error_prefix(err, "text %d", first + b);
    }
    return TL_OK;
}

tl_status tl_embed_texts(tl_model *m, const char *const *texts, int n, float *out, tl_error *err) {
    tl_status st = check_batch(n, texts, "texts", err);
    if (!st) st = check_texts(texts, n, err);
    if (st) return st;
    if (!m->tok)
        return tl_fail(err, TL_ERR_UNAVAILABLE,
                       "the checkpoint has no tokenizer (vocab.json + merges.txt)");
    int P = m->w.projection_dim, ctx = m->info.context_length;
    for (int i = 0; i < n && !st; i += TL_TEXT_CHUNK) {
        int B = min_int(TL_TEXT_CHUNK, n - i);
        float *rows = out + (size_t)i * P;
        st = tokenize_chunk(m, texts + i, i, B, err);
        if (!st)
            st = clip_text_forward(m->be, &m->w.text, m->ids, ctx, B, NULL, rows, &m->scratch, NULL,
                                   NULL, err);
        if (!st) m->be->l2_normalize(m->be, rows, B, P);
    }
    return st;
}

/* ---- images ---- */

tl_status tl_preprocess_image(const tl_model *m, const tl_image *image, float *pixels,
                              tl_error *err) {
    if (!image || !image->rgb || image->width < 1 || image->height < 1)
        return tl_fail(err, TL_ERR_INVALID, "empty image");
    return img_clip_preprocess(image, m->cfg.crop_size, m->cfg.image_mean, m->cfg.image_std, pixels,
                               err);
}

static tl_status check_pixels(const float *pixels, size_t count, int first, size_t per_item,
                              tl_error *err) {
    for (size_t i = 0; i < count; i++)
        if (!isfinite(pixels[i]))
            return tl_fail(err, TL_ERR_INVALID, "pixels of image %zu: value %zu is not finite",
                           first + i / per_item, i % per_item);
    return TL_OK;
}

tl_status tl_encode_pixels(tl_model *m, const float *pixels, int n, float *pooled, float *embeds,
                           tl_error *err) {
    tl_status st = check_batch(n, pixels, "pixels", err);
    if (st) return st;
    int D = m->w.vision.tower.width, P = m->w.projection_dim, S = m->info.image_size;
    size_t per_item = 3 * (size_t)S * S;
    st = check_pixels(pixels, (size_t)n * per_item, 0, per_item, err);
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        st = clip_vision_forward(m->be, &m->w.vision, pixels + (size_t)i * per_item, B,
                                 pooled ? pooled + (size_t)i * D : NULL,
                                 embeds ? embeds + (size_t)i * P : NULL, &m->scratch, NULL, NULL,
                                 err);
    }
    return st;
}

tl_status tl_embed_images(tl_model *m, const tl_image *images, int n, float *out, tl_error *err) {
    tl_status st = check_batch(n, images, "images", err);
    if (st) return st;
    int P = m->w.projection_dim, S = m->info.image_size;
    size_t per_item = 3 * (size_t)S * S;
    for (int i = 0; i < n && !st; i += TL_VISION_CHUNK) {
        int B = min_int(TL_VISION_CHUNK, n - i);
        for (int b = 0; b < B && !st; b++) {
            st = tl_preprocess_image(m, &images[i + b], m->pixels + b * per_item, err);
            if (st) tl_error_prefix(err, "image %d", i + b);
        }
        float *rows = out + (size_t)i * P;
        if (!st)
            st = clip_vision_forward(m->be, &m->w.vision, m->pixels, B, NULL, rows, &m->scratch,
                                     NULL, NULL, err);
        if (!st) m->be->l2_normalize(m->be, rows, B, P);
    }
    return st;
}
