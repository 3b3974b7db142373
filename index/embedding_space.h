/* Which model call puts a text, an image or a composed query into which search space: the
 * XMR space (text→image, image→image, image→text; FAME-ViL's TSA_xmr when the checkpoint has
 * it) and the TGIR space (composed and multi-turn queries against TGIR target embeddings). For
 * a plain CLIP checkpoint both are plain CLIP. The index builder (galleries), tailord (queries
 * and upserts) and `tailor search` all go through here, so galleries and queries always share
 * a space. Every call writes L2-normalised out[n, P] and must run on the thread that owns the
 * model. Not for: ranking (vector_index.h). */
#ifndef TL_EMBEDDING_SPACE_H
#define TL_EMBEDDING_SPACE_H

#include <stddef.h>

#include "index_build.h"
#include "tailor_model.h"

/* Query texts, in the XMR space. */
tl_status space_embed_texts(tl_model *m, const char *const *texts, int n, float *out,
                            tl_error *err);
/* Images: XMR gallery images and image queries, or TGIR target (gallery) images. */
tl_status space_embed_images(tl_model *m, embedding_space space, const tl_image *images, int n,
                             float *out, tl_error *err);
/* (reference image, modifying text) pairs: TGIR queries (tl_compose). */
tl_status space_compose(tl_model *m, const tl_image *refs, const char *const *texts, int n,
                        float *out, tl_error *err);

/* Whether an image's TGIR vector differs from its XMR vector (the checkpoint has a task). */
int space_images_distinct(const tl_model *m);
/* The manifest's capability list for galleries built with m, e.g. "xmr-image,tgir-image,
 * xmr-text" or "clip-image,clip-text". */
void space_capabilities(const tl_model *m, char *out, size_t size);
/* The index builder's embedder for m: every gallery in its space. */
index_embedder space_embedder(tl_model *m);

#endif
