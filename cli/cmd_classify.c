/* `tailor classify`: sub-category probabilities of an image and its text (tl_classify): the
 * checkpoint's scr head, or zero-shot CLIP over --labels. Not for: training a classifier. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tailor_model.h"

static void classify_usage(FILE *out) {
    fprintf(out, "usage: tailor classify --model DIR --image FILE --text TEXT [--labels A,B,..] "
                 "[--json]\n\n"
                 "Prints label probabilities, most likely first. Without --labels the\n"
                 "checkpoint's scr head classifies over its own labels; with --labels that are\n"
                 "not exactly its labels, zero-shot CLIP over \"a photo of a {label}\".\n"
                 "  --model DIR      checkpoint directory\n"
                 "  --image FILE     image (JPEG, PNG, WebP)\n"
                 "  --text TEXT      the product text\n"
                 "  --labels A,B,..  comma-separated labels\n"
                 "  --json           print a JSON object\n"
                 "  --help           this text\n");
}

/* Splits list at commas in place into labels (capacity cap); returns the count or -1. */
static int split_labels(char *list, char **labels, int cap) {
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == cap) return -1;
        labels[n++] = tok;
    }
    return n;
}

static void print_ranked(const char *const *labels, const float *probs, int n, int as_json) {
    int *order = malloc((size_t)(n + 1) * sizeof *order);
    if (!order) return;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort, descending: n is small */
        for (int j = i; j > 0 && probs[order[j]] > probs[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        if (!as_json) printf("%s\t%.6f\n", labels[order[i]], probs[order[i]]);
        json_array_append_new(arr, json_pack("{s:s, s:f}", "label", labels[order[i]], "probability",
                                             (double)probs[order[i]]));
    }
    if (as_json) {
        json_t *obj = json_pack("{s:o}", "labels", arr);
        json_dumpf(obj, stdout, JSON_REAL_PRECISION(7));
        printf("\n");
        json_decref(obj);
    } else {
        json_decref(arr);
    }
    free(order);
}

#define MAX_CLI_LABELS 1024

int cmd_classify(int argc, char **argv) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},
        {"image", required_argument, 0, 'i'},
        {"text", required_argument, 0, 't'},
        {"labels", required_argument, 0, 'l'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *model_dir = NULL, *image_path = NULL, *text = NULL;
    char *label_list = NULL;
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'm')
            model_dir = optarg;
        else if (c == 'i')
            image_path = optarg;
        else if (c == 't')
            text = optarg;
        else if (c == 'l')
            label_list = optarg;
        else if (c == 'j')
            as_json = 1;
        else if (c == 'h')
            return classify_usage(stdout), 0;
        else
            return classify_usage(stderr), 2;
    }
    if (!model_dir || !image_path || !text || optind != argc) return classify_usage(stderr), 2;
    char *given[MAX_CLI_LABELS];
    int n_given = label_list ? split_labels(label_list, given, MAX_CLI_LABELS) : 0;
    if (n_given < 0 || (label_list && n_given == 0)) {
        fprintf(stderr, "tailor classify: --labels needs 1..%d comma-separated labels\n",
                MAX_CLI_LABELS);
        return 2;
    }
    tl_error err;
    tl_model *m = NULL;
    tl_image img = {0};
    float *probs = NULL;
    int rc = 1;
    if (tl_model_open(&m, model_dir, NULL, &err) || img_load_file(image_path, NULL, &img, &err))
        goto done;
    const char *const *labels = (const char *const *)given;
    int n = n_given;
    if (!label_list) n = tl_scr_labels(m, &labels);
    probs = malloc((size_t)(n ? n : 1) * sizeof *probs);
    if (!probs) {
        tl_fail(&err, TL_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (tl_classify(m, &img, text, label_list ? labels : NULL, n, probs, &err)) goto done;
    print_ranked(labels, probs, n, as_json);
    rc = 0;
done:
    if (rc) fprintf(stderr, "tailor classify: %s\n", err.message);
    free(probs);
    img_free(&img);
    tl_model_close(m);
    return rc;
}
