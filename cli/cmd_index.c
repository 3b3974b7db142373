/* `tailor index build|info|verify`: builds an index directory from a catalogue with the model
 * engine, prints a directory's manifest, or verifies its checksums and counts.
 * Not for: the build logic itself (index/index_build.c) or searching (cmd_search.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "embedding_space.h"
#include "index_build.h"
#include "index_dir.h"
#include "tailor_model.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: tailor index build --model DIR --catalog FILE --out DIR [--factory S]\n"
            "                          [--nprobe N] [--strict] [--resume] [--batch N] [--threads N]\n"
            "       tailor index info DIR\n"
            "       tailor index verify DIR\n\n"
            "build   embeds every product of a catalogue (proto/catalog.md) and publishes an\n"
            "        index directory atomically at --out (a previous one is swapped out).\n"
            "  --factory S   faiss factory string (default IDMap2,Flat; e.g. IVF1024,Flat,\n"
            "                IDMap2,HNSW32, IVF1024,PQ64, IDMap2,SQ8, IDMap2,SQfp16)\n"
            "  --nprobe N    IVF factories: lists scanned per query, saved with the index\n"
            "                (default faiss's 1; tests/bench/RESULTS.md has measured settings)\n"
            "  --strict      catalogue problems and undecodable images are fatal\n"
            "  --resume      continue an interrupted build from its checkpoint\n"
            "  --batch N     products per model call (default 16)\n"
            "  --threads N   model and faiss threads (default: all CPUs)\n"
            "info    prints the manifest: model checksum, dim, counts, factory, creation time\n"
            "verify  checks every file's SHA-256 and the counts against the manifest\n"
            "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

typedef struct build_args {
    const char *model_dir, *catalog, *out_dir, *factory;
    int strict, resume, batch, threads, nprobe;
} build_args;

typedef struct progress_state {
    const char *catalog;
    int tty;
    time_t start, last;
} progress_state;

static void print_issue(int line, const char *message, void *ctx) {
    const progress_state *p = ctx;
    fprintf(stderr, "%s%s:%d: %s\n", p->tty ? "\r\033[K" : "", p->catalog, line, message);
}

/* A bar with rate and ETA on a terminal; otherwise a plain line every 10 seconds and at the end. */
static void print_progress(int64_t done, int64_t total, void *ctx) {
    progress_state *p = ctx;
    time_t now = time(NULL);
    if (!p->tty && now - p->last < 10 && done < total) return;
    p->last = now;
    double elapsed = difftime(now, p->start) > 0 ? difftime(now, p->start) : 1;
    double rate = done / elapsed, eta = rate > 0 ? (total - done) / rate : 0;
    int width = 30, filled = total ? (int)(width * done / total) : width;
    if (p->tty)
        fprintf(stderr, "\r[%.*s%*s] %lld/%lld  %.1f/s  ETA %.0fs%s", filled,
                "##############################", width - filled, "", (long long)done,
                (long long)total, rate, eta, done == total ? "\n" : "");
    else
        fprintf(stderr, "index build: %lld/%lld products, %.1f/s, ETA %.0fs\n", (long long)done,
                (long long)total, rate, eta);
}

static int parse_positive(const char *s, const char *what, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 1 << 20) {
        fprintf(stderr, "tailor index: %s must be a positive integer\n", what);
        return 2;
    }
    *out = (int)v;
    return 0;
}

/* Returns 0, 2 for a usage error, or -1 for --help. */
static int parse_build_args(int argc, char **argv, build_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'}, {"catalog", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},   {"factory", required_argument, NULL, 'f'},
        {"strict", no_argument, NULL, 's'},      {"resume", no_argument, NULL, 'r'},
        {"batch", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 'n'},
        {"nprobe", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    int rc = 0;
    for (int c; !rc && (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
            case 'm':
                a->model_dir = optarg;
                break;
            case 'c':
                a->catalog = optarg;
                break;
            case 'o':
                a->out_dir = optarg;
                break;
            case 'f':
                a->factory = optarg;
                break;
            case 's':
                a->strict = 1;
                break;
            case 'r':
                a->resume = 1;
                break;
            case 'b':
                rc = parse_positive(optarg, "--batch", &a->batch);
                break;
            case 'n':
                rc = parse_positive(optarg, "--threads", &a->threads);
                break;
            case 'p':
                rc = parse_positive(optarg, "--nprobe", &a->nprobe);
                break;
            case 'h':
                return -1;
            default:
                return 2;
        }
    }
    if (!rc && (optind < argc || !a->model_dir || !a->catalog || !a->out_dir)) {
        fprintf(stderr, "tailor index build: needs --model, --catalog and --out (see --help)\n");
        rc = 2;
    }
    return rc;
}

static int run_build(const build_args *a) {
    tl_error err = {0};
    tl_model *model;
    char checksum[65];
    tl_model_opts mo = {.n_threads = a->threads};
    if (index_model_checksum(a->model_dir, checksum, &err) ||
        tl_model_open(&model, a->model_dir, &mo, &err)) {
        fprintf(stderr, "tailor index build: %s\n", err.message);
        return 1;
    }
    if (!tl_model_get_info(model)->has_tokenizer) {
        fprintf(stderr, "tailor index build: %s has no tokenizer (vocab.json, merges.txt)\n",
                a->model_dir);
        tl_model_close(model);
        return 1;
    }
    index_embedder embedder = space_embedder(model);
    char capabilities[64];
    space_capabilities(model, capabilities, sizeof capabilities);
    progress_state progress = {a->catalog, isatty(2), time(NULL), 0};
    index_build_opts o = {.catalog = a->catalog,
                          .out_dir = a->out_dir,
                          .factory = a->factory,
                          .nprobe = a->nprobe,
                          .model_checksum = checksum,
                          .capabilities = capabilities,
                          .strict = a->strict,
                          .resume = a->resume,
                          .batch = a->batch,
                          .n_threads = a->threads,
                          .embedder = &embedder,
                          .on_progress = print_progress,
                          .on_issue = print_issue,
                          .ctx = &progress};
    index_build_stats stats;
    tl_status st = index_build(&o, &stats, &err);
    tl_model_close(model);
    if (st) {
        fprintf(stderr, "tailor index build: %s\n", err.message);
        return 1;
    }
    printf("published %s\n", a->out_dir);
    int64_t n = stats.products;
    printf("embedding stage: %lld products in %.1f s (%.1f items/s)\n"
           "index stage: %lld products in %.2f s (%.0f items/s)\n",
           (long long)stats.embedded, stats.embed_s,
           stats.embed_s > 0 ? stats.embedded / stats.embed_s : 0.0, (long long)n, stats.index_s,
           stats.index_s > 0 ? n / stats.index_s : 0.0);
    return 0;
}

static void print_manifest(const char *dir, const index_manifest *m) {
    printf("index:          %s\nformat:         %d\ncreated:        %s\n"
           "model checksum: %s\ncapabilities:   %s\ndim:            %d\nfactory:        %s\n"
           "products:       %lld\n",
           dir, m->format_version, m->created, m->model_checksum, m->capabilities, m->dim,
           m->factory, (long long)m->n_products);
    for (int g = 0; g < INDEX_N_GALLERIES; g++)
        printf("gallery %-12s %lld vectors\n", INDEX_GALLERY_NAMES[g],
               (long long)m->gallery_counts[g]);
}

static int run_info_or_verify(int verify, int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--help")) return usage(stdout), 0;
    if (argc != 2) {
        fprintf(stderr, "tailor index %s: needs one index directory\n", argv[0]);
        return 2;
    }
    index_manifest m;
    tl_error err = {0};
    tl_status st =
        verify ? index_dir_verify(argv[1], &m, &err) : index_manifest_read(argv[1], &m, &err);
    if (st) {
        fprintf(stderr, "tailor index %s: %s\n", argv[0], err.message);
        return 1;
    }
    print_manifest(argv[1], &m);
    if (verify) printf("verified: checksums and counts match the manifest\n");
    return 0;
}

int cmd_index(int argc, char **argv) {
    if (argc < 2) return usage(stderr), 2;
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return usage(stdout), 0;
    if (!strcmp(argv[1], "info")) return run_info_or_verify(0, argc - 1, argv + 1);
    if (!strcmp(argv[1], "verify")) return run_info_or_verify(1, argc - 1, argv + 1);
    if (strcmp(argv[1], "build")) {
        fprintf(stderr, "tailor index: unknown action '%s' (see --help)\n", argv[1]);
        return 2;
    }
    build_args a = {0};
    int rc = parse_build_args(argc - 1, argv + 1, &a);
    if (rc == -1) return usage(stdout), 0;
    return rc ? rc : run_build(&a);
}
