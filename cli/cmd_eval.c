/* `tailor eval`: scores a checkpoint on a data set split (trainer/eval_run.h) and prints a table
 * or JSON. Only argument parsing, choosing the data set and printing live here; the evaluation
 * itself is the trainer's eval_run, so `tailor eval` and training report the same numbers. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "dataset.h"
#include "eval_run.h"
#include "tailor_model.h"
#include "train_config.h"

static void eval_usage(FILE *out) {
    fprintf(out,
            "usage: tailor eval --model DIR --data DIR_OR_CONFIG [--kind KIND] [--split SPLIT]\n"
            "                   [--max-queries N] [--batch N] [--json]\n\n"
            "Evaluates a checkpoint on one split of a data set: XMR R@1/5/10 both ways, TGIR\n"
            "R@10/50, multi-turn R@5/10/50, SCR accuracy and macro-F1, FIC BLEU-4, ROUGE-L and\n"
            "CIDEr-D (proto/eval.md). A section the checkpoint or the data cannot serve is\n"
            "listed as not available, with the reason.\n\n"
            "  --model DIR        checkpoint directory\n"
            "  --data PATH        data set directory or file; or a tailor-train config (.json),\n"
            "                     whose first eval_dataset (else first dataset) is used\n"
            "  --kind KIND        demo (default), catalog, fashioniq, fashioniq_multiturn,\n"
            "                     fashiongen\n"
            "  --split SPLIT      split to score (default test; a config's own split otherwise)\n"
            "  --max-queries N    at most N queries per section (default: all)\n"
            "  --batch N          images or texts per model call (default %d)\n"
            "  --json             print a JSON object\n"
            "  --help             this text\n",
            EVAL_DEFAULT_BATCH);
}

typedef struct eval_args {
    const char *model_dir, *data, *split;
    int kind; /* train_dataset_kind; -1: not given */
    eval_options opts;
    int as_json;
} eval_args;

/* The train_dataset_kind named name, or -1 (with a message). */
static int parse_kind(const char *name) {
    for (int k = 0; k < TRAIN_N_DATASET_KINDS; k++)
        if (!strcmp(name, TRAIN_DATASET_KIND_NAMES[k])) return k;
    fprintf(stderr, "tailor eval: --kind: unknown data set kind '%s'\n", name);
    return -1;
}

static int parse_count(const char *flag, const char *text, long long min, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > 1000000000LL) {
        fprintf(stderr, "tailor eval: %s expects an integer in %lld..1000000000, got '%s'\n", flag,
                min, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Fills a from argv; returns -1 to print usage and fail, 1 for --help, 0 to run. */
static int parse_args(int argc, char **argv, eval_args *a) {
    static const struct option options[] = {
        {"model", required_argument, 0, 'm'},
        {"data", required_argument, 0, 'd'},
        {"kind", required_argument, 0, 'k'},
        {"split", required_argument, 0, 's'},
        {"max-queries", required_argument, 0, 'q'},
        {"batch", required_argument, 0, 'b'},
        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    long long v = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == 'm')
            a->model_dir = optarg;
        else if (c == 'd')
            a->data = optarg;
        else if (c == 'k' && (a->kind = parse_kind(optarg)) >= 0)
            continue;
        else if (c == 's')
            a->split = optarg;
        else if (c == 'q' && !parse_count("--max-queries", optarg, 1, &v))
            a->opts.max_queries = (size_t)v;
        else if (c == 'b' && !parse_count("--batch", optarg, 1, &v))
            a->opts.batch_size = (int)v;
        else if (c == 'j')
            a->as_json = 1;
        else if (c == 'h')
            return 1;
        else
            return -1;
    }
    return a->model_dir && a->data && optind == argc ? 0 : -1;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Opens the data set a names: a tailor-train config's evaluation data, or PATH of --kind. */
static tl_status open_data(const eval_args *a, dataset *ds, tl_error *err) {
    static char *default_categories[] = {"dress", "shirt", "toptee"};
    if (a->kind < 0 && ends_with(a->data, ".json")) {
        train_config cfg;
        tl_status st = train_config_load(&cfg, a->data, err);
        if (st) return st;
        train_dataset_config d = cfg.tasks[0].dataset;
        for (size_t t = cfg.n_tasks; t-- > 0;)
            if (cfg.tasks[t].eval_dataset.kind >= 0) d = cfg.tasks[t].eval_dataset;
        if (a->split) d.split = (char *)a->split;
        st = dataset_open(&d, ds, err);
        train_config_free(&cfg);
        return st;
    }
    train_dataset_config d = {.kind = a->kind < 0 ? TRAIN_DATA_DEMO : a->kind,
                              .path = (char *)a->data,
                              .split = (char *)(a->split ? a->split : "test"),
                              .n_categories = 3};
    memcpy(d.categories, default_categories, sizeof default_categories);
    return dataset_open(&d, ds, err);
}

static void print_table(const eval_report *r) {
    printf("%-10s %-9s %9s  %s\n", "section", "metric", "value", "queries / method");
    for (int s = 0; s < EVAL_N_SECTIONS; s++) {
        const eval_section *sec = &r->sections[s];
        if (!sec->ran) {
            printf("%-10s not available: %s\n", EVAL_SECTION_NAMES[s], sec->reason);
            continue;
        }
        const char *names[EVAL_MAX_METRICS];
        double values[EVAL_MAX_METRICS];
        size_t n = eval_section_metrics(r, (eval_section_id)s, names, values);
        for (size_t i = 0; i < n; i++)
            printf("%-10s %-9s %9.4f  %s\n", i ? "" : EVAL_SECTION_NAMES[s], names[i], values[i],
                   i ? "" : sec->method);
        printf("%-10s %zu queries, gallery %zu\n", "", sec->n_queries, sec->n_gallery);
    }
    printf("%.1f s\n", r->seconds);
}

/* Prints the report as JSON; 0, or a failure with err filled. */
static int print_json(const eval_report *r, tl_error *err) {
    json_t *obj = eval_report_json(r);
    if (!obj) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    if (cli_print_json(obj, JSON_REAL_PRECISION(7) | JSON_INDENT(2)))
        return tl_fail(err, TL_ERR_IO, "writing the JSON report failed");
    return 0;
}

int cmd_eval(int argc, char **argv) {
    eval_args a = {.kind = -1};
    eval_default_options(&a.opts);
    int parsed = parse_args(argc, argv, &a);
    if (parsed) {
        eval_usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : 2;
    }
    a.opts.progress = stderr;
    tl_error err = {0};
    tl_model *m = NULL;
    dataset ds = {0};
    int opened = 0, rc = 1;
    eval_report report;
    if (tl_model_open(&m, a.model_dir, NULL, &err)) goto done;
    if (open_data(&a, &ds, &err)) goto done;
    opened = 1;
    if (eval_run(m, &ds, &a.opts, &report, &err)) goto done;
    if (a.as_json ? print_json(&report, &err) : (print_table(&report), 0)) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "tailor eval: %s\n", err.message);
    if (opened) dataset_free(&ds);
    tl_model_close(m);
    return rc;
}
