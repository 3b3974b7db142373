/* `tailor-train`: the trainer's command line. Dispatches to one subcommand per file
 * (trainer/cmd_*.c); this file only routes, prints help and the version. */
#include <stdio.h>
#include <string.h>

#include "tailor_model.h"
#include "train_commands.h"

static const train_command commands[] = {
    {"demo-data", "write the Fashion-MNIST Colours demo data set", cmd_demo_data},
    {"plot", "draw a run's metrics.jsonl as an SVG", cmd_plot},
    {"train", "train a model from CONFIG.json (also: tailor-train CONFIG.json)", cmd_train},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
    fprintf(out, "usage: tailor-train COMMAND [ARGS...]\n\ncommands:\n");
    for (const train_command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n`tailor-train COMMAND --help` describes a command.\n"
                 "  --help     this text\n  --version  print the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tailor-train %s\n", TAILOR_VERSION);
        return 0;
    }
    for (const train_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    size_t len = strlen(argv[1]);
    if (len > 5 && !strcmp(argv[1] + len - 5, ".json")) return cmd_train(argc, argv);
    fprintf(stderr, "tailor-train: unknown command '%s' (see tailor-train --help)\n", argv[1]);
    return 2;
}
