/* What the single-image subcommands (classify, compose, caption) share: their common options,
 * opening the model and decoding the image, reporting a failure, printing JSON.
 * Not for: a subcommand's own options or output format (its cmd_NAME.c). */
#ifndef TL_CLI_COMMON_H
#define TL_CLI_COMMON_H

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "tailor_model.h"

/* The options every single-image subcommand takes. */
typedef struct cli_image_args {
    const char *model_dir;  /* --model DIR */
    const char *image_path; /* --image FILE */
    const char *text;       /* --text TEXT; NULL when not given */
    int as_json;            /* --json */
    tl_model_opts model;    /* how cli_run_on_image opens the model (zero: defaults); a
                             * command sets its own fields after parsing */
} cli_image_args;

/* A single-image subcommand's command line. options is its getopt_long table: the codes
 * 'm' (--model), 'i' (--image), 't' (--text), 'j' (--json) and 'h' (--help) are taken here;
 * every other code in the table goes to take_option. */
typedef struct cli_image_parser {
    const struct option *options;
    void (*usage)(FILE *out);
    int needs_text; /* --text is required */
    /* Takes one of the command's own options; returns 0, or 2 after saying why on stderr.
     * NULL when the table has no own options. */
    int (*take_option)(int code, char *value, void *ctx);
    void *ctx;
} cli_image_parser;

/* cli_parse_image_args's answer when the command should go on and run. */
#define CLI_RUN (-1)

/* Parses argv (argv[0] the subcommand name) into a. Returns CLI_RUN, or the exit status to
 * return at once: 0 after --help (usage on stdout), 2 on a usage error (usage on stderr,
 * unless take_option said why). */
int cli_parse_image_args(const cli_image_parser *p, int argc, char **argv, cli_image_args *a);

/* The work of a single-image subcommand on the opened model and decoded image: computes and
 * prints its result. Returns 0 or a failure status with err filled. */
typedef tl_status (*cli_image_work)(tl_model *m, const tl_image *img, const cli_image_args *a,
                                    void *ctx, tl_error *err);

/* Opens the model in a->model_dir, decodes a->image_path, runs work and closes both. On a
 * failure prints "tailor NAME: message" on stderr. Returns the exit status: 0 or 1. */
int cli_run_on_image(const char *name, const cli_image_args *a, cli_image_work work, void *ctx);

/* Prints obj on stdout with json_dumpf flags and a newline, then releases obj (it takes the
 * reference). Returns 0, or 1 when writing failed. */
int cli_print_json(json_t *obj, size_t flags);

#endif
