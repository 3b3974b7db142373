/* Which model call puts a text, an image or a composed query into which search space: the
 * XMR space (text→image, image→image; FAME-ViL's TSA_xmr when the checkpoint has it) and the
 * TGIR space (composed and multi-turn queries against TGIR target embeddings). For a plain
 * CLIP checkpoint both are plain CLIP. Every call writes L2-normalised out[n, P] and must run
 * on the thread that owns the model. Not for: ranking (search_service.h). */
#ifndef TAILORD_EMBEDDING_SPACE_H
#define TAILORD_EMBEDDING_SPACE_H

#include "tailor_model.h"

typedef enum embedding_space { SPACE_XMR, SPACE_TGIR, SPACE_COUNT } embedding_space;

/* Query texts, in the XMR space. */
tl_status space_embed_texts(tl_model *m, const char *const *texts, int n, float *out,
                            tl_error *err);
/* Images: XMR gallery images and image queries, or TGIR target (gallery) images. */
tl_status space_embed_images(tl_model *m, embedding_space space, const tl_image *images, int n,
                             float *out, tl_error *err);
/* (reference image, modifying text) pairs: TGIR queries (tl_compose). */
tl_status space_compose(tl_model *m, const tl_image *refs, const char *const *texts, int n,
                        float *out, tl_error *err);

#endif
