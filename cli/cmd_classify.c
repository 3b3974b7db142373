/* `tailor classify`: sub-category probabilities of an image and its text (tl_classify): the
 * checkpoint's scr head, or zero-shot CLIP over --labels. Not for: training a classifier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

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
    if (as_json)
        cli_print_json(json_pack("{s:o}", "labels", arr), JSON_REAL_PRECISION(7));
    else
        json_decref(arr);
    free(order);
}

#define MAX_CLI_LABELS 1024

/* --labels: the list as given (split in place) and its labels. */
typedef struct classify_labels {
    char *list; /* NULL: the checkpoint's scr labels */
    char *given[MAX_CLI_LABELS];
    int n_given;
} classify_labels;

static int take_labels(int code, char *value, void *ctx) {
    ((classify_labels *)ctx)->list = value;
    return 0;
}

static tl_status classify_and_print(tl_model *m, const tl_image *img, const cli_image_args *a,
                                    void *ctx, tl_error *err) {
    const classify_labels *l = ctx;
    const char *const *labels = (const char *const *)l->given;
    int n = l->list ? l->n_given : tl_scr_labels(m, &labels);
    float *probs = malloc((size_t)(n ? n : 1) * sizeof *probs);
    if (!probs) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    tl_status st = tl_classify(m, img, a->text, l->list ? labels : NULL, n, probs, err);
    if (!st) print_ranked(labels, probs, n, a->as_json);
    free(probs);
    return st;
}

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
    classify_labels l = {0};
    const cli_image_parser parser = {options, classify_usage, 1, take_labels, &l};
    cli_image_args a;
    int rc = cli_parse_image_args(&parser, argc, argv, &a);
    if (rc != CLI_RUN) return rc;
    l.n_given = l.list ? split_labels(l.list, l.given, MAX_CLI_LABELS) : 0;
    if (l.n_given < 0 || (l.list && l.n_given == 0)) {
        fprintf(stderr, "tailor classify: --labels needs 1..%d comma-separated labels\n",
                MAX_CLI_LABELS);
        return 2;
    }
    return cli_run_on_image("classify", &a, classify_and_print, &l);
}
