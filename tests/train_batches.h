/* The fixed per-task batches of tailor-tiny's inputs.safetensors (README T4) and one training
 * step on them, shared by refcheck_grads.c and the training tests. Header-only test helper.
 * Not for: library code (real training reads datasets in trainer/). */
#ifndef TL_TEST_TRAIN_BATCHES_H
#define TL_TEST_TRAIN_BATCHES_H

#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "train_tasks.h"

static const char *const tt_tasks[] = {"xmr", "tgir", "scr", "fic", "ntm"};
#define TT_TASKS 5

typedef struct tt_batch {
    int B, stride, turns;
    float *pixels, *pixels2; /* [B, C, S, S]; pixels2: TGIR targets */
    int32_t *ids;            /* [B, stride] */
    int *labels;             /* SCR labels [B] */
    float *x, *gallery;      /* NTM: [turns, B, P], [B, P] */
} tt_batch;

/* Tensor name as malloc'd int32 / float, with *n elements; NULL when absent. */
static inline int32_t *tt_i32(st_file *in, const char *name, size_t *n) {
    const st_tensor *t = st_find(in, name);
    if (!t) return NULL;
    *n = (size_t)st_numel(t);
    int64_t *v = malloc(*n * sizeof *v + 8);
    int32_t *out = malloc(*n * sizeof *out + 4);
    st_to_i64(t, v);
    for (size_t i = 0; i < *n; i++) out[i] = (int32_t)v[i];
    free(v);
    return out;
}

static inline float *tt_f32(st_file *in, const char *name, size_t *n) {
    const st_tensor *t = st_find(in, name);
    if (!t) return NULL;
    *n = (size_t)st_numel(t);
    float *out = malloc(*n * sizeof *out + 4);
    st_to_f32(t, out);
    return out;
}

/* rows[i] of a table of row_bytes rows, gathered into a fresh buffer. */
static inline void *tt_gather(const void *table, const int32_t *rows, size_t n, size_t row_bytes) {
    char *out = malloc(n * row_bytes + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * row_bytes, (const char *)table + (size_t)rows[i] * row_bytes, row_bytes);
    return out;
}

static inline void tt_batch_free(tt_batch *b) {
    free(b->pixels), free(b->pixels2), free(b->ids), free(b->labels), free(b->x), free(b->gallery);
    memset(b, 0, sizeof *b);
}

/* Images by the index list image_key (and image2_key); rows of ids_key picked by the index
 * list text_key (NULL: every row in order). */
static inline int tt_load_images_texts(tt_batch *b, st_file *in, size_t image_bytes,
                                       const char *image_key, const char *image2_key,
                                       const char *text_key, const char *ids_key) {
    size_t np = 0, nid = 0, ni = 0, nt = 0, ni2 = 0;
    float *pixels = tt_f32(in, "pixel_values", &np);
    int32_t *ids = tt_i32(in, ids_key, &nid), *img = tt_i32(in, image_key, &ni);
    int32_t *txt = text_key ? tt_i32(in, text_key, &nt) : NULL;
    int32_t *img2 = image2_key ? tt_i32(in, image2_key, &ni2) : NULL;
    int ok = pixels && ids && img && (!text_key || txt) && (!image2_key || img2);
    if (ok) {
        b->stride = (int)st_find(in, ids_key)->shape[1];
        b->B = (int)ni;
        b->pixels = tt_gather(pixels, img, ni, image_bytes);
        if (img2) b->pixels2 = tt_gather(pixels, img2, ni2, image_bytes);
        if (txt)
            b->ids = tt_gather(ids, txt, nt, (size_t)b->stride * sizeof(int32_t));
        else
            b->ids = ids, ids = NULL;
    }
    free(pixels), free(ids), free(img), free(txt), free(img2);
    return ok;
}

/* The batch of task (one of tt_tasks) from inputs in, read by tt_batch_read. */
static inline int tt_batch_read(tt_batch *b, st_file *in, const train_model *m, const char *task) {
    const tr_vision *v = &m->vision;
    size_t image_bytes = (size_t)v->channels * v->image_size * v->image_size * sizeof(float), n;
    if (!strcmp(task, "xmr"))
        return tt_load_images_texts(b, in, image_bytes, "xmr_image", NULL, "xmr_text", "input_ids");
    if (!strcmp(task, "tgir"))
        return tt_load_images_texts(b, in, image_bytes, "tgir_ref", "tgir_target", "tgir_text",
                                    "input_ids");
    if (!strcmp(task, "scr"))
        return tt_load_images_texts(b, in, image_bytes, "scr_image", NULL, "scr_text",
                                    "input_ids") &&
               (b->labels = tt_i32(in, "scr_label", &n)) != NULL;
    if (!strcmp(task, "fic"))
        return tt_load_images_texts(b, in, image_bytes, "fic_image", NULL, NULL, "fic_ids");
    b->x = tt_f32(in, "ntm_x", &n);
    b->gallery = tt_f32(in, "ntm_gallery", &n);
    if (!b->x || !b->gallery) return 0;
    b->turns = (int)st_find(in, "ntm_x")->shape[0];
    b->B = (int)st_find(in, "ntm_x")->shape[1];
    return 1;
}

/* The batch of task from inputs in (free with tt_batch_free); 0 when an input is missing,
 * with nothing left to free. */
static inline int tt_batch_load(tt_batch *b, st_file *in, const train_model *m, const char *task) {
    memset(b, 0, sizeof *b);
    int ok = tt_batch_read(b, in, m, task);
    if (!ok) tt_batch_free(b);
    return ok;
}

/* One loss + backward of task on b (gradients accumulate; the caller zeroes them); kd as in
 * train_tasks.h (ignored by ntm). */
static inline tl_status tt_step(train_model *m, train_arena *ar, const tt_batch *b,
                                const char *task, const train_distill *kd, double *loss,
                                tl_error *err) {
    if (!strcmp(task, "xmr"))
        return train_xmr_step(m, ar, b->pixels, b->ids, b->stride, b->B, kd, loss, err);
    if (!strcmp(task, "tgir"))
        return train_tgir_step(m, ar, b->pixels, b->ids, b->stride, b->pixels2, b->B, kd, loss,
                               err);
    if (!strcmp(task, "scr"))
        return train_scr_step(m, ar, b->pixels, b->ids, b->stride, b->labels, b->B, kd, loss, err);
    if (!strcmp(task, "fic"))
        return train_fic_step(m, ar, b->pixels, b->ids, b->B, b->stride, kd, loss, err);
    return train_ntm_step(m, ar, b->x, b->gallery, b->turns, b->B, loss, err);
}

#endif
