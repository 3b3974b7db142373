/* TEST ONLY: `index_fake_build build CATALOG OUT [--resume]` runs the real index builder with
 * the deterministic fake embedder (index_fake_embedder.h); `index_fake_build verify DIR` checks
 * a published directory. Used by index_crash_test.sh, which kills builds with SIGKILL. */
#include <stdio.h>
#include <string.h>

#include "index_dir.h"
#include "index_fake_embedder.h"

static void print_issue(int line, const char *message, void *ctx) {
    fprintf(stderr, "line %d: %s\n", line, message);
}

int main(int argc, char **argv) {
    tl_error err = {0};
    if (argc == 3 && !strcmp(argv[1], "verify")) {
        index_manifest m;
        if (index_dir_verify(argv[2], &m, &err)) {
            fprintf(stderr, "verify: %s\n", err.message);
            return 1;
        }
        printf("ok %lld products\n", (long long)m.n_products);
        return 0;
    }
    if (argc >= 4 && !strcmp(argv[1], "build")) {
        index_build_opts o = {.catalog = argv[2],
                              .out_dir = argv[3],
                              .resume = argc > 4 && !strcmp(argv[4], "--resume"),
                              .batch = 4,
                              .n_threads = 1,
                              .model_checksum = "fake",
                              .capabilities = "fake",
                              .embedder = &FAKE_EMBEDDER,
                              .on_issue = print_issue};
        if (index_build(&o, &err)) {
            fprintf(stderr, "build: %s\n", err.message);
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: index_fake_build build CATALOG OUT [--resume] | verify DIR\n");
    return 2;
}
