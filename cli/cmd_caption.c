/* `tailor caption`: a fashion caption of one image (tl_caption, greedy or beam search).
 * Not for: batch captioning of a catalogue. */
#include <stdio.h>
#include <stdlib.h>

#include "cli_common.h"
#include "commands.h"

#define CAPTION_TEXT_CAP 4096

static void caption_usage(FILE *out) {
    fprintf(out, "usage: tailor caption --model DIR --image FILE [--beam N] [--json]\n\n"
                 "Prints the caption (the token ids when the checkpoint has no tokenizer).\n"
                 "  --model DIR    checkpoint directory (needs the fic head)\n"
                 "  --image FILE   image (JPEG, PNG, WebP)\n"
                 "  --beam N       beam width (1..16, default 1: greedy)\n"
                 "  --json         print a JSON object with ids and text\n"
                 "  --help         this text\n");
}

static void print_caption(const int32_t *ids, int n, const char *text, int has_text, int as_json) {
    if (as_json) {
        json_t *arr = json_array();
        for (int i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
        cli_print_json(json_pack("{s:o, s:s?}", "ids", arr, "text", has_text ? text : NULL), 0);
    } else if (has_text) {
        printf("%s\n", text);
    } else {
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
}

/* --beam N into the tl_caption_opts at ctx. */
static int take_beam(int code, char *value, void *ctx) {
    tl_caption_opts *opts = ctx;
    char *end = NULL;
    opts->beam = (int)strtol(value, &end, 10);
    if (*end || opts->beam < 1 || opts->beam > 16) {
        fprintf(stderr, "tailor caption: --beam must be 1..16\n");
        return 2;
    }
    return 0;
}

static tl_status caption_and_print(tl_model *m, const tl_image *img, const cli_image_args *a,
                                   void *ctx, tl_error *err) {
    const tl_caption_opts *opts = ctx;
    const tl_model_info *info = tl_model_get_info(m);
    char text[CAPTION_TEXT_CAP];
    int n = 0;
    int32_t *ids = malloc((size_t)info->context_length * sizeof *ids);
    if (!ids) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = tl_caption(m, img, opts, ids, info->context_length, &n, text, sizeof text, err);
    if (!st) print_caption(ids, n, text, info->has_tokenizer && text[0], a->as_json);
    free(ids);
    return st;
}

int cmd_caption(int argc, char **argv) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'}, {"image", required_argument, 0, 'i'},
        {"beam", required_argument, 0, 'b'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    tl_caption_opts opts = {.beam = 1};
    const cli_image_parser parser = {options, caption_usage, 0, take_beam, &opts};
    cli_image_args a;
    int rc = cli_parse_image_args(&parser, argc, argv, &a);
    return rc == CLI_RUN ? cli_run_on_image("caption", &a, caption_and_print, &opts) : rc;
}
