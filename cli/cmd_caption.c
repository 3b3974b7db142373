/* `tailor caption`: a fashion caption of one image (tl_caption, greedy or beam search).
 * Not for: batch captioning of a catalogue. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "tailor_model.h"

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
        json_t *obj = json_pack("{s:o, s:s?}", "ids", arr, "text", has_text ? text : NULL);
        json_dumpf(obj, stdout, 0);
        printf("\n");
        json_decref(obj);
    } else if (has_text) {
        printf("%s\n", text);
    } else {
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
    }
}

int cmd_caption(int argc, char **argv) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'}, {"image", required_argument, 0, 'i'},
        {"beam", required_argument, 0, 'b'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    const char *model_dir = NULL, *image_path = NULL;
    tl_caption_opts opts = {.beam = 1};
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        char *end = NULL;
        if (c == 'm')
            model_dir = optarg;
        else if (c == 'i')
            image_path = optarg;
        else if (c == 'b')
            opts.beam = (int)strtol(optarg, &end, 10);
        else if (c == 'j')
            as_json = 1;
        else if (c == 'h')
            return caption_usage(stdout), 0;
        else
            return caption_usage(stderr), 2;
        if (c == 'b' && (*end || opts.beam < 1 || opts.beam > 16)) {
            fprintf(stderr, "tailor caption: --beam must be 1..16\n");
            return 2;
        }
    }
    if (!model_dir || !image_path || optind != argc) return caption_usage(stderr), 2;
    tl_error err;
    tl_model *m = NULL;
    tl_image img = {0};
    int32_t *ids = NULL;
    char text[CAPTION_TEXT_CAP];
    int rc = 1, n = 0;
    if (tl_model_open(&m, model_dir, NULL, &err) || img_load_file(image_path, NULL, &img, &err))
        goto done;
    const tl_model_info *info = tl_model_get_info(m);
    ids = malloc((size_t)info->context_length * sizeof *ids);
    if (!ids) {
        tl_fail(&err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (tl_caption(m, &img, &opts, ids, info->context_length, &n, text, sizeof text, &err))
        goto done;
    print_caption(ids, n, text, info->has_tokenizer && text[0], as_json);
    rc = 0;
done:
    if (rc) fprintf(stderr, "tailor caption: %s\n", err.message);
    free(ids);
    img_free(&img);
    tl_model_close(m);
    return rc;
}
