/* Subcommand dispatch for the `tailor` and `tailor-train` executables (see subcommand.h).
 * Not for: the commands themselves. */
#include "subcommand.h"

#include <stdio.h>
#include <string.h>

#include "tailor_model.h"

static void usage(FILE *out, const char *program, const cli_command *commands) {
    fprintf(out, "usage: %s COMMAND [ARGS...]\n\ncommands:\n", program);
    for (const cli_command *c = commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out,
            "\n`%s COMMAND --help` describes a command.\n"
            "  --help     this text\n  --version  print the version\n",
            program);
}

int cli_dispatch(const char *program, const cli_command *commands, int argc, char **argv) {
    if (argc < 2) {
        usage(stderr, program, commands);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout, program, commands);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("%s %s\n", program, TAILOR_VERSION);
        return 0;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n", program, argv[1], program);
    return 2;
}
