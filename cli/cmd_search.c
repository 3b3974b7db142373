/* `tailor search`: one query (a text, an image file, a catalogue item's image, or an image plus
 * a modifying text) against a published index directory, printing the top-k products with their
 * catalogue metadata. Not for: serving many queries (the daemon) or building indexes (cmd_index.c).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_store.h"
#include "commands.h"
#include "embedding_space.h"
#include "index_dir.h"
#include "tailor_model.h"
#include "vector_index.h"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: tailor search --index DIR --model DIR (--text T | --image FILE | --item ID)\n"
        "                     [--category C] [-k N] [--gallery NAME] [--json]\n"
        "       tailor search --index DIR --model DIR (--image FILE | --item ID) --text T ...\n\n"
        "Embeds the query with the model and prints the k nearest products.\n"
        "  --index DIR     index directory built by `tailor index build`\n"
        "  --model DIR     the checkpoint the index was built with (checked)\n"
        "  --text T        text -> image search\n"
        "  --image FILE    image -> image search\n"
        "  --item ID       products like catalogue item ID (its image; ID itself excluded)\n"
        "  an image or item with --text: composed query (\"like this but ...\") against\n"
        "                  the tgir_target gallery\n"
        "  --category C    only products of category C\n"
        "  -k N            number of results (default 10)\n"
        "  --gallery NAME  xmr_image (default; tgir_target when composed), tgir_target or\n"
        "                  xmr_text (image -> text)\n"
        "  --json          JSON output\n"
        "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

typedef struct search_args {
    const char *index_dir, *model_dir, *text, *image, *category, *gallery;
    int64_t item;
    int has_item, k, json;
} search_args;

/* Returns 0, 2 for a usage error, or -1 for --help. */
static int parse_args(int argc, char **argv, search_args *a) {
    static const struct option opts[] = {
        {"index", required_argument, NULL, 'x'},   {"model", required_argument, NULL, 'm'},
        {"text", required_argument, NULL, 't'},    {"image", required_argument, NULL, 'i'},
        {"item", required_argument, NULL, 'd'},    {"category", required_argument, NULL, 'c'},
        {"gallery", required_argument, NULL, 'g'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    char *end;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "k:", opts, NULL)) != -1;) {
        switch (c) {
            case 'x':
                a->index_dir = optarg;
                break;
            case 'm':
                a->model_dir = optarg;
                break;
            case 't':
                a->text = optarg;
                break;
            case 'i':
                a->image = optarg;
                break;
            case 'c':
                a->category = optarg;
                break;
            case 'g':
                a->gallery = optarg;
                break;
            case 'j':
                a->json = 1;
                break;
            case 'd':
                a->item = strtoll(optarg, &end, 10);
                a->has_item = 1;
                if (*end || !*optarg) return fprintf(stderr, "tailor search: bad --item\n"), 2;
                break;
            case 'k':
                a->k = (int)strtol(optarg, &end, 10);
                if (*end || a->k < 1 || a->k > 10000)
                    return fprintf(stderr, "tailor search: -k must be 1..10000\n"), 2;
                break;
            case 'h':
                return -1;
            default:
                return 2;
        }
    }
    if (optind < argc || !a->index_dir || !a->model_dir || !!a->image + a->has_item > 1 ||
        (!a->text && !a->image && !a->has_item)) {
        fprintf(stderr, "tailor search: needs --index, --model and --text, --image or --item "
                        "(one of --image and --item, optionally with --text) (see --help)\n");
        return 2;
    }
    return 0;
}

static int gallery_of(const char *name) {
    for (int g = 0; g < INDEX_N_GALLERIES; g++)
        if (!strcmp(name, INDEX_GALLERY_NAMES[g])) return g;
    return -1;
}

/* The query embedding q[P] in the space of gallery; for --item the item's image path comes from
 * the catalogue. */
static tl_status embed_query(tl_model *m, catalog_store *s, const search_args *a, int gallery,
                             float *q, tl_error *err) {
    int has_image = a->image || a->has_item;
    if (!has_image) return space_embed_texts(m, &a->text, 1, q, err);
    catalog_product item = {0};
    const char *path = a->image;
    tl_status st = a->has_item ? catalog_get(s, a->item, &item, err) : TL_OK;
    if (a->has_item && !st) path = item.image_path;
    tl_image img = {0};
    if (!st) st = img_load_file(path, NULL, &img, err);
    embedding_space space = gallery == GALLERY_TGIR_TARGET ? SPACE_TGIR : SPACE_XMR;
    if (!st)
        st = a->text ? space_compose(m, &img, &a->text, 1, q, err)
                     : space_embed_images(m, space, &img, 1, q, err);
    img_free(&img);
    catalog_product_clear(&item);
    return st;
}

static void print_results(catalog_store *s, const search_args *a, const float *scores,
                          const int64_t *ids, int n) {
    json_t *results = json_array();
    for (int i = 0, rank = 1; i < n && ids[i] >= 0 && rank <= a->k; i++) {
        catalog_product p = {0};
        if ((a->has_item && ids[i] == a->item) || catalog_get(s, ids[i], &p, NULL)) continue;
        if (a->json)
            json_array_append_new(
                results, json_pack("{s:i, s:I, s:f, s:s, s:s, s:s, s:s}", "rank", rank, "id",
                                   (json_int_t)ids[i], "score", scores[i], "sku", p.sku, "title",
                                   p.title, "category", p.category, "image", p.image_path));
        else
            printf("%2d  %-10lld %.4f  %-12s %-12s %s\n", rank, (long long)ids[i], scores[i],
                   p.category, p.sku, p.title);
        rank++;
        catalog_product_clear(&p);
    }
    if (a->json) {
        char *text = json_dumps(results, JSON_INDENT(2));
        if (text) puts(text);
        free(text);
    }
    json_decref(results);
}

typedef struct search_session {
    index_manifest manifest;
    tl_model *model;
    catalog_store *store;
    vector_index *gallery;
} search_session;

static tl_status open_session(search_session *ss, const search_args *a, int gallery,
                              tl_error *err) {
    char path[4096], name[64], checksum[65];
    tl_status st = index_manifest_read(a->index_dir, &ss->manifest, err);
    if (!st) st = index_model_checksum(a->model_dir, checksum, err);
    if (!st && strcmp(checksum, ss->manifest.model_checksum))
        st = tl_fail(err, TL_ERR_INVALID, "%s was built with another model (checksum %s)",
                     a->index_dir, ss->manifest.model_checksum);
    if (!st) st = tl_model_open(&ss->model, a->model_dir, NULL, err);
    if (!st) st = index_dir_path(path, sizeof path, a->index_dir, INDEX_CATALOG_FILE, err);
    if (!st) st = catalog_store_open(&ss->store, path, CATALOG_READ_ONLY, err);
    snprintf(name, sizeof name, "%s.gallery", INDEX_GALLERY_NAMES[gallery]);
    if (!st) st = index_dir_path(path, sizeof path, a->index_dir, name, err);
    if (!st) st = vector_index_load(&ss->gallery, path, VECTOR_INDEX_READ_ONLY, 0, err);
    return st;
}

static void close_session(search_session *ss) {
    vector_index_free(ss->gallery);
    catalog_store_close(ss->store);
    tl_model_close(ss->model);
}

static int run_search(const search_args *a, int gallery) {
    search_session ss = {0};
    tl_error err = {0};
    tl_status st = open_session(&ss, a, gallery, &err);
    int dim = ss.manifest.dim, n = a->k + a->has_item;
    float *q = malloc(dim * sizeof *q), *scores = malloc(n * sizeof *scores);
    int64_t *ids = malloc(n * sizeof *ids);
    if (!st && (!q || !scores || !ids)) st = tl_fail(&err, TL_ERR_NOMEM, "out of memory");
    if (!st && tl_model_get_info(ss.model)->projection_dim != dim)
        st = tl_fail(&err, TL_ERR_INVALID, "model and index dims differ");
    if (!st) st = embed_query(ss.model, ss.store, a, gallery, q, &err);
    if (!st) st = vector_index_search(ss.gallery, q, 1, n, a->category, scores, ids, &err);
    if (!st) print_results(ss.store, a, scores, ids, n);
    if (st) fprintf(stderr, "tailor search: %s\n", err.message);
    free(q);
    free(scores);
    free(ids);
    close_session(&ss);
    return st ? 1 : 0;
}

int cmd_search(int argc, char **argv) {
    search_args a = {.k = 10};
    int rc = parse_args(argc, argv, &a);
    if (rc == -1) return usage(stdout), 0;
    if (rc) return rc;
    if (!a.gallery) a.gallery = a.text && (a.image || a.has_item) ? "tgir_target" : "xmr_image";
    int gallery = gallery_of(a.gallery);
    if (gallery < 0) {
        fprintf(stderr, "tailor search: unknown gallery '%s'\n", a.gallery);
        return 2;
    }
    return run_search(&a, gallery);
}
