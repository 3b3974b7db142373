/* TEST ONLY: `index_model_build MODEL CATALOG OUT` builds an index directory for a checkpoint
 * without a tokenizer (tailor-tiny), which `tailor index build` refuses: galleries of the
 * model's image embeddings, and a text gallery of deterministic per-title unit vectors (tailord
 * never searches it). Not for: real catalogues (use `tailor index build`). */
#include <stdio.h>
#include <string.h>

#include "embedding_space.h"
#include "index_build.h"
#include "index_dir.h"
#include "tailor_model.h"

/* A unit vector per text, from a hash of its bytes. */
static tl_status hashed_texts(void *ctx, const char *const *texts, int n, float *out,
                              tl_error *err) {
    int dim = tl_model_get_info(ctx)->projection_dim;
    for (int i = 0; i < n; i++) {
        unsigned h = 2166136261u;
        for (const char *p = texts[i]; *p; p++) h = (h ^ (unsigned char)*p) * 16777619u;
        for (int j = 0; j < dim; j++) out[(size_t)i * dim + j] = j == (int)(h % dim) ? 1.0f : 0.0f;
    }
    return TL_OK;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: index_model_build MODEL CATALOG OUT\n");
        return 2;
    }
    tl_error err = {0};
    tl_model *model = NULL;
    char checksum[65];
    tl_status st = index_model_checksum(argv[1], checksum, &err);
    if (!st) st = tl_model_open(&model, argv[1], NULL, &err);
    if (!st) {
        index_embedder embedder = space_embedder(model);
        embedder.embed_texts = hashed_texts;
        char capabilities[64];
        space_capabilities(model, capabilities, sizeof capabilities);
        index_build_opts o = {.catalog = argv[2],
                              .out_dir = argv[3],
                              .model_checksum = checksum,
                              .capabilities = capabilities,
                              .strict = 1,
                              .n_threads = 1,
                              .embedder = &embedder};
        st = index_build(&o, NULL, &err);
    }
    tl_model_close(model);
    if (st) fprintf(stderr, "index_model_build: %s\n", err.message);
    return st ? 1 : 0;
}
