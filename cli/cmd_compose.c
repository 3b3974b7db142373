/* `tailor compose`: the TGIR query vector of a reference image and a modifying text
 * (tl_compose). Not for: searching an index with it (`tailor search`). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "tailor_model.h"

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
    json_t *obj =
        json_pack("{s:s, s:o}", "mode", zero_shot ? "zero-shot" : "tgir", "embedding", arr);
    json_dumpf(obj, stdout, JSON_REAL_PRECISION(7));
    printf("\n");
    json_decref(obj);
}

int cmd_compose(int argc, char **argv) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'}, {"image", required_argument, 0, 'i'},
        {"text", required_argument, 0, 't'},  {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    const char *model_dir = NULL, *image_path = NULL, *text = NULL;
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'm')
            model_dir = optarg;
        else if (c == 'i')
            image_path = optarg;
        else if (c == 't')
            text = optarg;
        else if (c == 'j')
            as_json = 1;
        else if (c == 'h')
            return compose_usage(stdout), 0;
        else
            return compose_usage(stderr), 2;
    }
    if (!model_dir || !image_path || !text || optind != argc) return compose_usage(stderr), 2;
    tl_error err;
    tl_model *m = NULL;
    tl_image img = {0};
    float *query = NULL;
    int rc = 1;
    if (tl_model_open(&m, model_dir, NULL, &err) || img_load_file(image_path, NULL, &img, &err))
        goto done;
    int P = tl_model_get_info(m)->projection_dim;
    query = malloc((size_t)P * sizeof *query);
    if (!query) {
        tl_fail(&err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *texts[1] = {text};
    if (tl_compose(m, &img, texts, 1, query, &err)) goto done;
    print_embedding(query, P, !(tl_model_capabilities(m) & TL_CAP_TGIR), as_json);
    rc = 0;
done:
    if (rc) fprintf(stderr, "tailor compose: %s\n", err.message);
    free(query);
    img_free(&img);
    tl_model_close(m);
    return rc;
}
