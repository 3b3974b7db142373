/* embedding_space.h: task calls when the checkpoint has the task, plain CLIP otherwise. */
#include "embedding_space.h"

#include <stdio.h>

static int has_task(const tl_model *m, tl_task task) {
    return (tl_model_capabilities(m) & (1u << task)) != 0;
}

tl_status space_embed_texts(tl_model *m, const char *const *texts, int n, float *out,
                            tl_error *err) {
    if (has_task(m, TL_TASK_XMR)) return tl_embed_texts_task(m, TL_TASK_XMR, texts, n, out, err);
    return tl_embed_texts(m, texts, n, out, err);
}

tl_status space_embed_images(tl_model *m, embedding_space space, const tl_image *images, int n,
                             float *out, tl_error *err) {
    tl_task task = space == SPACE_TGIR ? TL_TASK_TGIR : TL_TASK_XMR;
    if (has_task(m, task)) return tl_embed_images_task(m, task, images, n, out, err);
    return tl_embed_images(m, images, n, out, err);
}

tl_status space_compose(tl_model *m, const tl_image *refs, const char *const *texts, int n,
                        float *out, tl_error *err) {
    return tl_compose(m, refs, texts, n, out, err);
}

int space_images_distinct(const tl_model *m) {
    return has_task(m, TL_TASK_XMR) || has_task(m, TL_TASK_TGIR);
}

void space_capabilities(const tl_model *m, char *out, size_t size) {
    const char *xmr = has_task(m, TL_TASK_XMR) ? "xmr" : "clip";
    const char *tgir = has_task(m, TL_TASK_TGIR) ? "tgir" : "clip";
    if (space_images_distinct(m))
        snprintf(out, size, "%s-image,%s-image,%s-text", xmr, tgir, xmr);
    else
        snprintf(out, size, "clip-image,clip-text");
}

static tl_status embedder_images(void *ctx, embedding_space space, const tl_image *images, int n,
                                 float *out, tl_error *err) {
    return space_embed_images(ctx, space, images, n, out, err);
}

static tl_status embedder_texts(void *ctx, const char *const *texts, int n, float *out,
                                tl_error *err) {
    return space_embed_texts(ctx, texts, n, out, err);
}

index_embedder space_embedder(tl_model *m) {
    return (index_embedder){.dim = tl_model_get_info(m)->projection_dim,
                            .ctx = m,
                            .embed_images = embedder_images,
                            .embed_texts = embedder_texts,
                            .distinct_spaces = space_images_distinct(m)};
}
