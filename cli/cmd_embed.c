/* `tailor embed`: prints L2-normalised CLIP embeddings of texts and image files, one line (or
 * JSON object) per input in command-line order, all inputs of a kind in one engine call.
 * Not for: model logic (model/), batch jobs over catalogues (the index commands). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"
#include "tailor_model.h"

typedef struct embed_input {
    int is_image;
    const char *value; /* the text, or the image path */
    int row;           /* row among the inputs of its kind */
} embed_input;

typedef struct embed_args {
    const char *model_dir;
    int json, threads;
    int task; /* --task: TL_TASK_XMR or TL_TASK_TGIR adapters, -1 = plain CLIP */
    embed_input *inputs;
    int n_inputs, n_texts, n_images;
} embed_args;

static void usage(FILE *out) {
    fprintf(out, "usage: tailor embed --model DIR [--text T]... [--image FILE]... [--json] "
                 "[--threads N]\n"
                 "                    [--task xmr|tgir]\n\n"
                 "Prints the L2-normalised CLIP embedding of each input, in the order given:\n"
                 "  text\\tLABEL\\tv1 v2 ...   (or with --json an array of\n"
                 "  {\"kind\": \"text\"|\"image\", \"input\": LABEL, \"embedding\": [...]})\n\n"
                 "  --model DIR    checkpoint directory (config.json + model.safetensors)\n"
                 "  --text T       a text to embed (repeatable)\n"
                 "  --image FILE   a JPEG, PNG or WebP file to embed (repeatable)\n"
                 "  --json         JSON output\n"
                 "  --threads N    worker threads (default: all CPUs)\n"
                 "  --task T       task embeddings with the checkpoint's xmr or tgir adapters\n"
                 "                 (tgir: the TGIR gallery features); default plain CLIP\n"
                 "  --help         this text\n"
                 "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

static int add_input(embed_args *a, int is_image, const char *value) {
    embed_input *grown = realloc(a->inputs, (size_t)(a->n_inputs + 1) * sizeof *grown);
    if (!grown) return -1;
    a->inputs = grown;
    int row = is_image ? a->n_images++ : a->n_texts++;
    a->inputs[a->n_inputs++] = (embed_input){is_image, value, row};
    return 0;
}

/* Returns 0, or the exit status for a usage error / --help (-1 for help). */
static int parse_args(int argc, char **argv, embed_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"text", required_argument, NULL, 't'},
        {"image", required_argument, NULL, 'i'},   {"json", no_argument, NULL, 'j'},
        {"threads", required_argument, NULL, 'n'}, {"task", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        char *end;
        switch (c) {
            case 'm':
                a->model_dir = optarg;
                break;
            case 't':
            case 'i':
                if (add_input(a, c == 'i', optarg)) return 1;
                break;
            case 'j':
                a->json = 1;
                break;
            case 'n':
                a->threads = (int)strtol(optarg, &end, 10);
                if (*end || a->threads < 1 || a->threads > 1024) {
                    fprintf(stderr, "tailor embed: --threads must be 1..1024\n");
                    return 2;
                }
                break;
            case 'k':
                a->task = tl_task_from_name(optarg);
                if (a->task != TL_TASK_XMR && a->task != TL_TASK_TGIR) {
                    fprintf(stderr, "tailor embed: --task must be xmr or tgir\n");
                    return 2;
                }
                break;
            case 'h':
                return -1;
            default:
                return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tailor embed: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!a->model_dir || a->n_inputs == 0) {
        fprintf(stderr, "tailor embed: needs --model DIR and at least one --text or --image "
                        "(see --help)\n");
        return 2;
    }
    return 0;
}

/* Decodes every image input into images[row]; on failure names the file. */
static int load_images(const embed_args *a, tl_image *images) {
    for (int i = 0; i < a->n_inputs; i++) {
        const embed_input *in = &a->inputs[i];
        if (!in->is_image) continue;
        tl_error err = {0};
        if (img_load_file(in->value, NULL, &images[in->row], &err)) {
            fprintf(stderr, "tailor embed: %s: %s\n", in->value, err.message);
            return 1;
        }
    }
    return 0;
}

/* Runs the model on all texts and all images; embeddings[kind][row * P]. */
static int run_model(tl_model *m, const embed_args *a, float *text_emb, float *image_emb) {
    const char **texts = calloc((size_t)a->n_texts + 1, sizeof *texts);
    tl_image *images = calloc((size_t)a->n_images + 1, sizeof *images);
    int rc = !texts || !images;
    for (int i = 0; i < a->n_inputs && !rc; i++)
        if (!a->inputs[i].is_image) texts[a->inputs[i].row] = a->inputs[i].value;
    if (!rc) rc = load_images(a, images);
    tl_error err = {0};
    if (!rc && a->n_texts)
        rc =
            (a->task < 0 ? tl_embed_texts(m, texts, a->n_texts, text_emb, &err)
                         : tl_embed_texts_task(m, a->task, texts, a->n_texts, text_emb, &err)) != 0;
    if (!rc && a->n_images)
        rc = (a->task < 0
                  ? tl_embed_images(m, images, a->n_images, image_emb, &err)
                  : tl_embed_images_task(m, a->task, images, a->n_images, image_emb, &err)) != 0;
    if (rc && err.message[0]) fprintf(stderr, "tailor embed: %s\n", err.message);
    for (int i = 0; i < a->n_images; i++) img_free(&images[i]);
    free(texts);
    free(images);
    return rc;
}

/* Writes s with tab, newline, carriage return and backslash escaped. */
static void print_label(const char *s) {
    for (; *s; s++) {
        switch (*s) {
            case '\t':
                fputs("\\t", stdout);
                break;
            case '\n':
                fputs("\\n", stdout);
                break;
            case '\r':
                fputs("\\r", stdout);
                break;
            case '\\':
                fputs("\\\\", stdout);
                break;
            default:
                putchar(*s);
        }
    }
}

static int print_plain(const embed_args *a, const float *text_emb, const float *image_emb, int P) {
    for (int i = 0; i < a->n_inputs; i++) {
        const embed_input *in = &a->inputs[i];
        const float *e = (in->is_image ? image_emb : text_emb) + (size_t)in->row * P;
        printf("%s\t", in->is_image ? "image" : "text");
        print_label(in->value);
        putchar('\t');
        for (int j = 0; j < P; j++) printf(j ? " %.9g" : "%.9g", e[j]);
        putchar('\n');
    }
    return fflush(stdout) ? 1 : 0;
}

static int print_json(const embed_args *a, const float *text_emb, const float *image_emb, int P) {
    json_t *arr = json_array();
    for (int i = 0; i < a->n_inputs; i++) {
        const embed_input *in = &a->inputs[i];
        const float *e = (in->is_image ? image_emb : text_emb) + (size_t)in->row * P;
        json_t *vec = json_array();
        for (int j = 0; j < P; j++) json_array_append_new(vec, json_real(e[j]));
        json_array_append_new(arr,
                              json_pack("{s:s, s:s, s:o}", "kind", in->is_image ? "image" : "text",
                                        "input", in->value, "embedding", vec));
    }
    return cli_print_json(arr, JSON_REAL_PRECISION(9)) || fflush(stdout) ? 1 : 0;
}

static int embed_with_model(const embed_args *a) {
    tl_model_opts opts = {.n_threads = a->threads, .backend = "cpu"};
    tl_model *m;
    tl_error err = {0};
    if (tl_model_open(&m, a->model_dir, &opts, &err)) {
        fprintf(stderr, "tailor embed: %s\n", err.message);
        return 1;
    }
    int P = tl_model_get_info(m)->projection_dim;
    float *text_emb = malloc(((size_t)a->n_texts + 1) * P * sizeof(float));
    float *image_emb = malloc(((size_t)a->n_images + 1) * P * sizeof(float));
    int rc = !text_emb || !image_emb ? 1 : run_model(m, a, text_emb, image_emb);
    if (!rc)
        rc = a->json ? print_json(a, text_emb, image_emb, P)
                     : print_plain(a, text_emb, image_emb, P);
    free(text_emb);
    free(image_emb);
    tl_model_close(m);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    embed_args a = {.task = -1};
    int rc = parse_args(argc, argv, &a);
    if (rc == -1) usage(stdout);
    if (rc == 0) rc = embed_with_model(&a);
    free(a.inputs);
    return rc == -1 ? 0 : rc;
}
