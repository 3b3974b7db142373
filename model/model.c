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
        .decode_bf16_bytes = m->tasks->bf16 ? m->tasks->bf16->bytes : 0,
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
    if (!st) st = session_memory_open(m, opts, err);
    if (!st && opts && opts->decode_bf16) st = decode_bf16_open(m, err);
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
    session_memory_close(m);
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

tl_status model_check_batch(int n, const void *in, const char *what, tl_error *err) {
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

/* Validates rows ids[n, stride] (ids in the vocabulary, end-of-text inside the context) and
 * writes each row's pooling position into len[n]. */
static tl_status check_text_rows(const tl_model *m, const int32_t *ids, int stride, int n, int *len,
                                 tl_error *err) {
    for (int i = 0; i < n; i++) {
        const int32_t *row = ids + (size_t)i * stride;
        for (int t = 0; t < stride; t++)
            if (row[t] < 0 || row[t] >= m->info.vocab_size)
                return tl_fail(err, TL_ERR_INVALID,
                               "text row %d: token id %d at position %d outside the vocabulary "
                               "0..%d",
                               i, row[t], t, m->info.vocab_size - 1);
        len[i] = clip_text_pool_position(row, stride);
        if (len[i] >= m->info.context_length)
            return tl_fail(err, TL_ERR_LIMIT,
                           "text row %d: end-of-text at position %d, past the context length %d", i,
                           len[i], m->info.context_length);
    }
    return TL_OK;
}

static const int *sort_keys; /* qsort has no context argument; a model is used by one thread */

static int by_length(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_keys[i] != sort_keys[j]) return sort_keys[i] < sort_keys[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* Runs rows order[0..B) of ids through the text tower into those rows of pooled/embeds;
 * tmp holds B·(D+P) floats. */
static tl_status run_text_chunk(tl_model *m, const int32_t *ids, int stride, const int *order,
                                int B, float *pooled, float *embeds, float *tmp, tl_error *err) {
    int ctx = m->info.context_length, D = m->info.text_width, P = m->info.projection_dim;
    size_t copy = (size_t)min_int(stride, ctx) * sizeof *m->ids;
    memset(m->ids, 0, (size_t)B * ctx * sizeof *m->ids);
    for (int b = 0; b < B; b++)
        memcpy(m->ids + (size_t)b * ctx, ids + (size_t)order[b] * stride, copy);
    float *tmp_pooled = tmp, *tmp_embeds = tmp + (size_t)B * D; /* [B,D], [B,P] */
    tl_status st = clip_text_forward(m->be, &m->w.text, m->ids, ctx, B, tmp_pooled, tmp_embeds,
                                     &m->scratch, NULL, NULL, err);
    for (int b = 0; b < B && !st; b++) {
        size_t row = (size_t)order[b];
        if (pooled) memcpy(pooled + row * D, tmp_pooled + (size_t)b * D, D * sizeof *tmp);
        if (embeds) memcpy(embeds + row * P, tmp_embeds + (size_t)b * P, P * sizeof *tmp);
    }
    return st;
}

/* The text tower over rows ids[n, stride], validated here, in chunks of similar length (each
 * chunk runs only as many positions as its longest row); outputs land in the caller's order. */
static tl_status encode_text_rows(tl_model *m, const int32_t *ids, int stride, int n, float *pooled,
                                  float *embeds, tl_error *err) {
    int *len = malloc((size_t)n * sizeof *len), *order = malloc((size_t)n * sizeof *order);
    size_t tmp_floats = (size_t)TL_TEXT_CHUNK * (m->info.text_width + m->info.projection_dim);
    float *tmp = malloc(tmp_floats * sizeof *tmp);
    if (!len || !order || !tmp) {
        free(len), free(order), free(tmp);
        return tl_fail(err, TL_ERR_NOMEM, "texts: out of memory");
    }
    tl_status st = check_text_rows(m, ids, stride, n, len, err);
    if (!st) {
        for (int i = 0; i < n; i++) order[i] = i;
        sort_keys = len;
        qsort(order, (size_t)n, sizeof *order, by_length);
    }
    for (int i = 0; i < n && !st; i += TL_TEXT_CHUNK)
        st = run_text_chunk(m, ids, stride, order + i, min_int(TL_TEXT_CHUNK, n - i), pooled,
                            embeds, tmp, err);
    free(len), free(order), free(tmp);
    return st;
}

tl_status tl_encode_text_ids(tl_model *m, const int32_t *ids, int ids_stride, int n, float *pooled,
                             float *embeds, tl_error *err) {
    tl_status st = model_check_batch(n, ids, "text ids", err);
    if (st || n == 0) return st;
    if (ids_stride < 1) return tl_fail(err, TL_ERR_INVALID, "text ids: stride %d", ids_stride);
    return encode_text_rows(m, ids, ids_stride, n, pooled, embeds, err);
}

/* Every text non-NULL and within the tokenizer's byte limit; messages count from first. */
static tl_status check_texts(const char *const *texts, int first, int n, tl_error *err) {
    for (int i = 0; i < n; i++) {
        if (!texts[i]) return tl_fail(err, TL_ERR_INVALID, "text %d is NULL", first + i);
        if (strnlen(texts[i], TOK_MAX_TEXT_BYTES + 1) > TOK_MAX_TEXT_BYTES)
            return tl_fail(err, TL_ERR_LIMIT, "text %d is longer than %u bytes", first + i,
                           TOK_MAX_TEXT_BYTES);
    }
    return TL_OK;
}

tl_status model_tokenize_texts(const tl_model *m, const char *const *texts, int first, int n,
                               int32_t *ids, tl_error *err) {
    tl_status st = check_texts(texts, first, n, err);
    if (st) return st;
    if (!m->tok)
        return tl_fail(err, TL_ERR_UNAVAILABLE,
                       "the checkpoint has no tokenizer (vocab.json + merges.txt)");
    int ctx = m->info.context_length;
    memset(ids, 0, (size_t)n * ctx * sizeof *ids);
    for (int i = 0; i < n; i++) {
        int n_ids;
        if (tok_encode(m->tok, texts[i], strlen(texts[i]), ctx, ids + (size_t)i * ctx, &n_ids, err))
            return tl_error_prefix(err, "text %d", first + i);
    }
    return TL_OK;
}

tl_status tl_embed_texts(tl_model *m, const char *const *texts, int n, float *out, tl_error *err) {
    tl_status st = model_check_batch(n, texts, "texts", err);
    if (st || n == 0) return st;
    int ctx = m->info.context_length;
    int32_t *ids = malloc((size_t)n * ctx * sizeof *ids);
    if (!ids) return tl_fail(err, TL_ERR_NOMEM, "texts: out of memory");
    st = model_tokenize_texts(m, texts, 0, n, ids, err);
    if (!st) st = encode_text_rows(m, ids, ctx, n, NULL, out, err);
    if (!st) m->be->l2_normalize(m->be, out, n, m->info.projection_dim);
    free(ids);
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
    tl_status st = model_check_batch(n, pixels, "pixels", err);
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
    tl_status st = model_check_batch(n, images, "images", err);
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
