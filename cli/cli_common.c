/* Shared pieces of the single-image subcommands (see cli_common.h).
 * Not for: anything a subcommand does with the model's output. */
#include "cli_common.h"

#include <getopt.h>
#include <stdio.h>

/* 1 when code is the val of an entry of options. */
static int in_table(const struct option *options, int code) {
    for (const struct option *o = options; o->name; o++)
        if (o->val == code) return 1;
    return 0;
}

/* Takes a common option into a; returns 1 when code is one. */
static int take_common(int code, char *value, cli_image_args *a) {
    if (code == 'm')
        a->model_dir = value;
    else if (code == 'i')
        a->image_path = value;
    else if (code == 't')
        a->text = value;
    else if (code == 'j')
        a->as_json = 1;
    else
        return 0;
    return 1;
}

int cli_parse_image_args(const cli_image_parser *p, int argc, char **argv, cli_image_args *a) {
    *a = (cli_image_args){0};
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", p->options, NULL)) != -1;) {
        if (c == 'h') return p->usage(stdout), 0;
        if (take_common(c, optarg, a)) continue;
        if (!p->take_option || !in_table(p->options, c)) return p->usage(stderr), 2;
        if (p->take_option(c, optarg, p->ctx)) return 2;
    }
    if (!a->model_dir || !a->image_path || (p->needs_text && !a->text) || optind != argc)
        return p->usage(stderr), 2;
    return CLI_RUN;
}

int cli_run_on_image(const char *name, const cli_image_args *a, cli_image_work work, void *ctx) {
    tl_error err;
    tl_model *m = NULL;
    tl_image img = {0};
    int rc = tl_model_open(&m, a->model_dir, &a->model, &err) ||
             img_load_file(a->image_path, NULL, &img, &err) || work(m, &img, a, ctx, &err);
    if (rc) fprintf(stderr, "tailor %s: %s\n", name, err.message);
    img_free(&img);
    tl_model_close(m);
    return rc;
}

int cli_print_json(json_t *obj, size_t flags) {
    int rc = json_dumpf(obj, stdout, flags) ? 1 : 0;
    putchar('\n');
    json_decref(obj);
    return rc;
}
