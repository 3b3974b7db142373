/* `tailor-train demo-data`: writes the Fashion-MNIST Colours demo data set (demo_data.h) with
 * a progress line on a terminal. Only argument parsing and reporting live here. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "demo_data.h"
#include "train_commands.h"

typedef struct progress_state {
    int last_percent;
    const char *last_split;
} progress_state;

static void usage(FILE *out) {
    fprintf(out,
            "usage: tailor-train demo-data --out DIR [--seed N] [--size N] [--test-size N]\n\n"
            "Writes the Fashion-MNIST Colours demo data set (proto/datasets.md) into DIR, which\n"
            "must not exist yet: catalogue.jsonl, captions.jsonl, images/, triplets-SPLIT.jsonl,\n"
            "transactions-SPLIT.jsonl and dataset.json. Needs Debian's dataset-fashion-mnist\n"
            "(deploy/setup.sh installs it). Same options, same bytes.\n\n"
            "  --out DIR        output directory (written to a temporary one, then renamed)\n"
            "  --seed N         random seed, 0 <= N < 2^63 (default 0)\n"
            "  --size N         train garments, 10..60000 (default %d); also caps the test\n"
            "                   garments unless --test-size is given\n"
            "  --test-size N    test garments, 10..10000 (default min(%d, --size))\n"
            "  --help           this text\n\n"
            "Each garment gives %d catalogue items (colour, shade and pattern variants).\n",
            DEMO_DEFAULT_TRAIN_SIZE, DEMO_DEFAULT_TEST_SIZE, DEMO_VARIANTS_PER_GARMENT);
}

/* Parses a decimal integer in [min, max] into *out; 0 on success. */
static int parse_int(const char *flag, const char *text, long long min, long long max,
                     long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf(stderr, "tailor-train demo-data: %s expects an integer in %lld..%lld, got '%s'\n",
                flag, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static void show_progress(void *ctx, const char *split, int done, int total) {
    progress_state *p = ctx;
    int percent = (int)(100LL * done / total);
    if (split == p->last_split && percent == p->last_percent) return;
    p->last_split = split;
    p->last_percent = percent;
    fprintf(stderr, "\r%-5s %3d%%  %d/%d garments", split, percent, done, total);
    if (done == total) fputc('\n', stderr);
}

static int parse_options(int argc, char **argv, const char **out_dir, demo_options *opts) {
    static const struct option long_opts[] = {
        {"out", required_argument, NULL, 'o'},  {"seed", required_argument, NULL, 's'},
        {"size", required_argument, NULL, 'n'}, {"test-size", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    long long value, test_size = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
        switch (c) {
            case 'o':
                *out_dir = optarg;
                break;
            case 's':
                if (parse_int("--seed", optarg, 0, INT64_MAX, &value)) return 2;
                opts->seed = (uint64_t)value;
                break;
            case 'n':
                if (parse_int("--size", optarg, 10, 60000, &value)) return 2;
                opts->train_garments = (int)value;
                break;
            case 't':
                if (parse_int("--test-size", optarg, 10, 10000, &test_size)) return 2;
                break;
            case 'h':
                usage(stdout);
                return 0;
            default: /* getopt_long has said what is wrong */
                fprintf(stderr, "see tailor-train demo-data --help\n");
                return 2;
        }
    }
    if (optind < argc || !*out_dir) {
        fprintf(stderr, "tailor-train demo-data: %s (see tailor-train demo-data --help)\n",
                optind < argc ? "unexpected argument" : "--out DIR is required");
        return 2;
    }
    opts->test_garments = test_size >= 0                                  ? (int)test_size
                          : opts->train_garments < DEMO_DEFAULT_TEST_SIZE ? opts->train_garments
                                                                          : DEMO_DEFAULT_TEST_SIZE;
    return -1;
}

int cmd_demo_data(int argc, char **argv) {
    const char *out_dir = NULL;
    demo_options opts;
    demo_default_options(&opts);
    int rc = parse_options(argc, argv, &out_dir, &opts);
    if (rc >= 0) return rc;
    progress_state progress = {-1, NULL};
    if (isatty(STDERR_FILENO)) {
        opts.progress = show_progress;
        opts.progress_ctx = &progress;
    }
    tl_error err;
    if (demo_generate(out_dir, &opts, &err) != TL_OK) {
        fprintf(stderr, "tailor-train demo-data: %s\n", err.message);
        return 1;
    }
    printf("wrote %s: %d train and %d test garments, %d items each\n", out_dir, opts.train_garments,
           opts.test_garments, DEMO_VARIANTS_PER_GARMENT);
    return 0;
}
