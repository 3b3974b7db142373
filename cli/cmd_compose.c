/* `tailor compose`: the TGIR query vector of a reference image and a modifying text
 * (tl_compose). Not for: searching an index with it (`tailor search`). */
#include <stdio.h>
#include <stdlib.h>

#include "cli_common.h"
#include "commands.h"

static void compose_usage(FILE *out) {
    fprintf(out, "usage: tailor compose --model DIR --image FILE --text TEXT [--json]\n\n"
                 "Prints the composed (reference image + modifying text) query embedding,\n"
                 "L2-normalised. Without a tgir head: zero-shot n(n(v) + n(t)).\n"
                 "  --model DIR    checkpoint directory\n"
                 "  --image FILE   reference image (JPEG, PNG, WebP)\n"
                 "  --text TEXT    modifying text\n"
                 "  --json         print a JSON object\n"
                 "  --help         this text\n");
}

static void print_embedding(const float *v, int P, int zero_shot, int as_json) {
    if (!as_json) {
        for (int i = 0; i < P; i++) printf(i ? " %.7g" : "%.7g", v[i]);
        printf("\n");
        return;
    }
    json_t *arr = json_array();
    for (int i = 0; i < P; i++) json_array_append_new(arr, json_real(v[i]));
    cli_print_json(
        json_pack("{s:s, s:o}", "mode", zero_shot ? "zero-shot" : "tgir", "embedding", arr),
        JSON_REAL_PRECISION(7));
}

static tl_status compose_and_print(tl_model *m, const tl_image *img, const cli_image_args *a,
                                   void *ctx, tl_error *err) {
    int P = tl_model_get_info(m)->projection_dim;
    float *query = malloc((size_t)P * sizeof *query);
    if (!query) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    const char *texts[1] = {a->text};
    tl_status st = tl_compose(m, img, texts, 1, query, err);
    if (!st) print_embedding(query, P, !(tl_model_capabilities(m) & TL_CAP_TGIR), a->as_json);
    free(query);
    return st;
}

int cmd_compose(int argc, char **argv) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'}, {"image", required_argument, 0, 'i'},
        {"text", required_argument, 0, 't'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    static const cli_image_parser parser = {options, compose_usage, 1, NULL, NULL};
    cli_image_args a;
    int rc = cli_parse_image_args(&parser, argc, argv, &a);
    return rc == CLI_RUN ? cli_run_on_image("compose", &a, compose_and_print, NULL) : rc;
}
