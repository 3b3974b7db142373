/* `tailor-train train CONFIG.json [--resume] [--steps N]` (also `tailor-train CONFIG.json`):
 * argument parsing and reporting around train_run (train_loop.h). */
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_commands.h"
#include "train_config.h"
#include "train_loop.h"

static void usage(FILE *out) {
    fprintf(out, "usage: tailor-train train CONFIG.json [--resume] [--steps N]\n"
                 "       tailor-train CONFIG.json [--resume] [--steps N]\n\n"
                 "Trains the model CONFIG.json describes (proto/train_config.md): metrics go to\n"
                 "OUTPUT_DIR/metrics.jsonl, checkpoints (written atomically) to\n"
                 "OUTPUT_DIR/checkpoint, and a progress line to stderr.\n\n"
                 "  --resume   continue from OUTPUT_DIR/checkpoint exactly where it stopped\n"
                 "  --steps N  stop once N steps are done (with a checkpoint); the schedule\n"
                 "             still spans the config's steps\n"
                 "  --help     this text\n");
}

int cmd_train(int argc, char **argv) {
    static const struct option long_opts[] = {{"resume", no_argument, NULL, 'r'},
                                              {"steps", required_argument, NULL, 's'},
                                              {"help", no_argument, NULL, 'h'},
                                              {NULL, 0, NULL, 0}};
    train_run_options opt = {0, 0, stderr};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", long_opts, NULL)) != -1;) {
        char *end = NULL;
        if (c == 'r')
            opt.resume = 1;
        else if (c == 's' && (opt.stop_step = strtoll(optarg, &end, 10)) > 0 && !*end)
            continue;
        else if (c == 'h')
            return usage(stdout), 0;
        else
            return fprintf(stderr, "tailor-train train: bad option (see --help)\n"), 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "tailor-train train: expected one CONFIG.json (see --help)\n");
        return 2;
    }
    train_config cfg;
    tl_error err = {0};
    if (train_config_load(&cfg, argv[optind], &err)) {
        fprintf(stderr, "tailor-train: %s\n", err.message);
        return 2;
    }
    /* Each step frees and reallocates its activations: keep them in the heap rather than
     * fresh mmaps, whose page faults would cost as much as the arithmetic. */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    tl_status st = train_run(&cfg, &opt, &err);
    if (st) fprintf(stderr, "tailor-train: %s\n", err.message);
    train_config_free(&cfg);
    return st ? 1 : 0;
}
