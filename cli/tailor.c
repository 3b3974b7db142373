/* `tailor`: the command-line front door to the engine and the index. Dispatches to one
 * subcommand per file (cli/cmd_*.c); this file only routes, prints help and the version. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "tailor_model.h"

static const cli_command commands[] = {
    /* {"name", "one-line summary", cmd_name}, */
    {"compose", "composed (image + text) query embedding", cmd_compose},
    {"classify", "sub-category probabilities of an image", cmd_classify},
    {"caption", "caption an image", cmd_caption},
    {"embed", "print CLIP embeddings of texts and images", cmd_embed},
    {"eval", "evaluate a checkpoint on a data set split", cmd_eval},
    {"session", "replay a multi-turn search over a gallery", cmd_session},
    {NULL, NULL, NULL},
};

static void usage(FILE *out) {
    fprintf(out, "usage: tailor COMMAND [ARGS...]\n\ncommands:\n");
    for (const cli_command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n`tailor COMMAND --help` describes a command.\n"
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
        printf("tailor %s\n", TAILOR_VERSION);
        return 0;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "tailor: unknown command '%s' (see tailor --help)\n", argv[1]);
    return 2;
}
