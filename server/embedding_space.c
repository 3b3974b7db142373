/* embedding_space.h: task calls when the checkpoint has the task, plain CLIP otherwise. */
#include "embedding_space.h"

tl_status space_embed_texts(tl_model *m, const char *const *texts, int n, float *out,
                            tl_error *err) {
    if (tl_model_capabilities(m) & TL_CAP_XMR)
        return tl_embed_texts_task(m, TL_TASK_XMR, texts, n, out, err);
    return tl_embed_texts(m, texts, n, out, err);
}

tl_status space_embed_images(tl_model *m, embedding_space space, const tl_image *images, int n,
                             float *out, tl_error *err) {
    tl_task task = space == SPACE_TGIR ? TL_TASK_TGIR : TL_TASK_XMR;
    if (tl_model_capabilities(m) & (1u << task))
        return tl_embed_images_task(m, task, images, n, out, err);
    return tl_embed_images(m, images, n, out, err);
}

tl_status space_compose(tl_model *m, const tl_image *refs, const char *const *texts, int n,
                        float *out, tl_error *err) {
    return tl_compose(m, refs, texts, n, out, err);
}
