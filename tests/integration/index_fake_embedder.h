/* TEST ONLY: a deterministic fake embedder for index builds, so that builder tests do not need
 * the model engine. Image vectors hash the decoded pixels (an image's TGIR vector is its XMR
 * vector reversed, so the spaces differ), text vectors hash the bytes; all are L2-normalised. Never
 * linked into the tailor CLI. */
#ifndef TL_INDEX_FAKE_EMBEDDER_H
#define TL_INDEX_FAKE_EMBEDDER_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index_build.h"

#define FAKE_EMBED_DIM 16

static void fake_embed_normalise(float *v) {
    double s = 1e-12;
    for (int j = 0; j < FAKE_EMBED_DIM; j++) s += (double)v[j] * v[j];
    for (int j = 0; j < FAKE_EMBED_DIM; j++) v[j] = (float)(v[j] / sqrt(s));
}

static tl_status fake_embed_images(void *ctx, embedding_space space, const tl_image *images, int n,
                                   float *out, tl_error *err) {
    for (int i = 0; i < n; i++) {
        float *v = out + (size_t)i * FAKE_EMBED_DIM;
        for (int j = 0; j < FAKE_EMBED_DIM; j++) v[j] = 1.0f + (float)j / FAKE_EMBED_DIM;
        size_t bytes = (size_t)images[i].width * images[i].height * 3;
        for (size_t p = 0; p < bytes; p++) {
            uint32_t h = (uint32_t)p * 2654435761u;
            v[h % FAKE_EMBED_DIM] += (h & 0x100 ? 1.0f : -1.0f) * images[i].rgb[p] / 255.0f;
        }
        fake_embed_normalise(v);
        for (int j = 0; space == SPACE_TGIR && j < FAKE_EMBED_DIM / 2; j++) {
            float t = v[j];
            v[j] = v[FAKE_EMBED_DIM - 1 - j];
            v[FAKE_EMBED_DIM - 1 - j] = t;
        }
    }
    return TL_OK;
}

static tl_status fake_embed_texts(void *ctx, const char *const *texts, int n, float *out,
                                  tl_error *err) {
    for (int i = 0; i < n; i++) {
        float *v = out + (size_t)i * FAKE_EMBED_DIM;
        uint32_t h = 2166136261u;
        for (int j = 0; j < FAKE_EMBED_DIM; j++) v[j] = 0.5f;
        for (const char *c = texts[i]; *c; c++) {
            h = (h ^ (uint8_t)*c) * 16777619u;
            v[h % FAKE_EMBED_DIM] += (h & 0x100 ? 1.0f : -1.0f);
        }
        fake_embed_normalise(v);
    }
    return TL_OK;
}

static const index_embedder FAKE_EMBEDDER = {FAKE_EMBED_DIM, NULL, fake_embed_images,
                                             fake_embed_texts, 1};

#endif
