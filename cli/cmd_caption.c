/* `tailor caption`: a fashion caption of one image (tl_caption, greedy or beam search).
 * Not for: batch captioning of a catalogue. */
#include <stdio.h>
#include <stdlib.h>

#include "cli_common.h"
#include "commands.h"

#define CAPTION_TEXT_CAP 4096

static void caption_usage(FILE *out) {
    fprintf(out, "usage: tailor caption --model DIR --image FILE [--beam N] [--decode-bf16] "
                 "[--json]\n\n"
                 "Prints the caption (the token ids when the checkpoint has no tokenizer).\n"
                 "  --model DIR    checkpoint directory (needs the fic head)\n"
                 "  --image FILE   image (JPEG, PNG, WebP)\n"
                 "  --beam N       beam width (1..16, default 1: greedy)\n"
                 "  --decode-bf16  decode on bfloat16 weight copies: faster, logits differ\n"
                 "                 from fp32 by rounding (the caption may too)\n"
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

typedef struct caption_args {
    tl_caption_opts caption;
    int decode_bf16; /* --decode-bf16 */
} caption_args;

/* --beam N or --decode-bf16 into the caption_args at ctx. */
static int take_caption_option(int code, char *value, void *ctx) {
    caption_args *args = ctx;
    if (code == 'f') {
        args->decode_bf16 = 1;
        return 0;
    }
    char *end = NULL;
    args->caption.beam = (int)strtol(value, &end, 10);
    if (*end || args->caption.beam < 1 || args->caption.beam > 16) {
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
        {"model", required_argument, 0, 'm'},
        {"image", required_argument, 0, 'i'},
        {"beam", required_argument, 0, 'b'},
        {"decode-bf16", no_argument, 0, 'f'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    caption_args args = {.caption = {.beam = 1}};
    const cli_image_parser parser = {options, caption_usage, 0, take_caption_option, &args};
    cli_image_args a;
    int rc = cli_parse_image_args(&parser, argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    a.model.decode_bf16 = args.decode_bf16;
    return cli_run_on_image("caption", &a, caption_and_print, &args.caption);
}
