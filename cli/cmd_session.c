/* `tailor session`: replays a multi-turn search script (proto/session.md "Turns file") through
 * one tl_session and prints each turn's top-k items of a gallery (an image folder or an
 * embeddings file). Not for: serving sessions (tailord) or building a product index. */
#include <ctype.h>
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "safetensors.h"
#include "tailor_model.h"

#define GALLERY_BATCH 64 /* images decoded and embedded at a time */
#define MAX_K         1000

typedef struct session_args {
    const char *model_dir, *turns_path, *gallery_path, *save_path;
    int k, json;
    float decay; /* 0 = the model's default */
} session_args;

/* Rows of the ranked gallery: unit embeddings [n, P], ids, and (image folders) file names. */
typedef struct gallery {
    int n, P;
    float *emb;
    int64_t *ids;
    char **names;     /* [n] owned, NULL for an embeddings file */
    const char *root; /* the image folder, or NULL */
} gallery;

static void usage(FILE *out) {
    fprintf(out,
            "usage: tailor session --model DIR --turns FILE.json --gallery DIR|FILE.safetensors\n"
            "                      [-k N] [--json] [--decay D] [--save-gallery FILE]\n\n"
            "Replays a multi-turn search (proto/session.md, \"Turns file\") through one session\n"
            "and prints each turn's top-k gallery items: turn, rank, id, name, score (q·g).\n"
            "  --model DIR           checkpoint directory\n"
            "  --turns FILE          {\"turns\": [{\"image\": PATH | \"gallery_item\": ID|NAME,\n"
            "                        \"text\": TEXT}, ...]}; paths relative to FILE\n"
            "  --gallery DIR|FILE    a folder of JPEG/PNG/WebP images (ids 0.. in name order)\n"
            "                        or a .safetensors with \"embeddings\" F32 [n,P] and \"ids\"\n"
            "                        I64 [n] (proto/session.md, \"Gallery embeddings file\")\n"
            "  -k N                  results per turn (default 5)\n"
            "  --json                one JSON object\n"
            "  --decay D             the decayed-sum fallback's decay in (0, 1] (default 0.5)\n"
            "  --save-gallery FILE   also write the gallery embeddings file\n"
            "  --help                this text\n"
            "Exit status: 0 success, 1 runtime error, 2 usage error.\n");
}

/* Returns 0, -1 for --help, or 2 for a usage error. */
static int parse_args(int argc, char **argv, session_args *a) {
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"turns", required_argument, NULL, 't'},
        {"gallery", required_argument, NULL, 'g'}, {"json", no_argument, NULL, 'j'},
        {"decay", required_argument, NULL, 'd'},   {"save-gallery", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, "k:", opts, NULL)) != -1;) {
        char *end = NULL;
        if (c == 'm')
            a->model_dir = optarg;
        else if (c == 't')
            a->turns_path = optarg;
        else if (c == 'g')
            a->gallery_path = optarg;
        else if (c == 's')
            a->save_path = optarg;
        else if (c == 'j')
            a->json = 1;
        else if (c == 'h')
            return -1;
        else if (c == 'k')
            a->k = (int)strtol(optarg, &end, 10);
        else if (c == 'd')
            a->decay = strtof(optarg, &end);
        else
            return 2;
        if (end && (*end || !*optarg)) {
            fprintf(stderr, "tailor session: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (optind < argc || !a->model_dir || !a->turns_path || !a->gallery_path || a->k < 1 ||
        a->k > MAX_K || !(a->decay >= 0.0f && a->decay <= 1.0f)) {
        fprintf(stderr,
                "tailor session: needs --model, --turns and --gallery; -k in 1..%d, "
                "--decay in (0, 1] (see --help)\n",
                MAX_K);
        return 2;
    }
    return 0;
}

/* ---- the gallery ---- */

static int is_image_name(const struct dirent *e) {
    const char *dot = e->d_name[0] != '.' ? strrchr(e->d_name, '.') : NULL;
    if (!dot) return 0;
    char ext[8] = "";
    for (int i = 0; i < 7 && dot[i + 1]; i++) ext[i] = (char)tolower((unsigned char)dot[i + 1]);
    return !strcmp(ext, "jpg") || !strcmp(ext, "jpeg") || !strcmp(ext, "png") ||
           !strcmp(ext, "webp");
}

/* Loads images[first, first + B) of g's folder into imgs. */
static tl_status load_batch(const gallery *g, int first, int B, tl_image *imgs, tl_error *err) {
    char path[PATH_MAX];
    for (int b = 0; b < B; b++) {
        snprintf(path, sizeof path, "%s/%s", g->root, g->names[first + b]);
        tl_status st = img_load_file(path, NULL, &imgs[b], err);
        if (st) return tl_error_prefix(err, "%s", path);
    }
    return TL_OK;
}

/* The TGIR gallery features (plain CLIP image embeddings without the tgir capability, to match
 * the zero-shot composition), GALLERY_BATCH images at a time. */
static tl_status embed_folder(tl_model *m, gallery *g, tl_error *err) {
    int tgir = (tl_model_capabilities(m) & TL_CAP_TGIR) != 0;
    tl_image imgs[GALLERY_BATCH];
    tl_status st = TL_OK;
    for (int i = 0; i < g->n && !st; i += GALLERY_BATCH) {
        int B = g->n - i < GALLERY_BATCH ? g->n - i : GALLERY_BATCH;
        memset(imgs, 0, sizeof imgs);
        st = load_batch(g, i, B, imgs, err);
        float *rows = g->emb + (size_t)i * g->P;
        if (!st)
            st = tgir ? tl_embed_images_task(m, TL_TASK_TGIR, imgs, B, rows, err)
                      : tl_embed_images(m, imgs, B, rows, err);
        for (int b = 0; b < B; b++) img_free(&imgs[b]);
    }
    return st;
}

static void free_listing(struct dirent **list, int n) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

/* The image file names of dir in name order into g, ids 0..n-1. */
static tl_status list_folder(const char *dir, gallery *g, tl_error *err) {
    struct dirent **list = NULL;
    int n = scandir(dir, &list, is_image_name, alphasort);
    if (n < 0) return tl_fail(err, TL_ERR_IO, "%s: cannot list the folder", dir);
    if (n == 0) {
        free(list);
        return tl_fail(err, TL_ERR_NOT_FOUND, "%s: no JPEG, PNG or WebP images", dir);
    }
    char **names = calloc((size_t)n, sizeof *names);
    int64_t *ids = malloc((size_t)n * sizeof *ids);
    g->names = names, g->ids = ids;
    for (int i = 0; names && ids && i < n; i++) {
        if (!(names[i] = strdup(list[i]->d_name))) break;
        ids[i] = i, g->n = i + 1;
    }
    free_listing(list, n);
    return g->n == n ? TL_OK : tl_fail(err, TL_ERR_NOMEM, "out of memory listing %s", dir);
}

static tl_status gallery_from_folder(tl_model *m, const char *dir, gallery *g, tl_error *err) {
    g->root = dir;
    tl_status st = list_folder(dir, g, err);
    if (st) return st;
    g->emb = malloc(((size_t)g->n + 1) * g->P * sizeof *g->emb);
    if (!g->emb) return tl_fail(err, TL_ERR_NOMEM, "out of memory for %d embeddings", g->n);
    return embed_folder(m, g, err);
}

/* Whether e and ids are "embeddings" F32 [n, P] and "ids" I64 [n], 1 <= n, n·P <= INT_MAX. */
static int is_gallery_file(const st_tensor *e, const st_tensor *ids, int P) {
    return e && ids && e->dtype == ST_F32 && e->ndim == 2 && e->shape[1] == P &&
           ids->dtype == ST_I64 && ids->ndim == 1 && ids->shape[0] == e->shape[0] &&
           e->shape[0] >= 1 && e->shape[0] <= INT_MAX / P;
}

static tl_status gallery_from_file(const char *path, gallery *g, tl_error *err) {
    st_file *f = NULL;
    tl_status st = st_open(&f, path, err);
    if (st) return st;
    const st_tensor *e = st_find(f, "embeddings"), *ids = st_find(f, "ids");
    if (!is_gallery_file(e, ids, g->P)) {
        st_close(f);
        return tl_fail(err, TL_ERR_FORMAT,
                       "%s: needs \"embeddings\" F32 [n, %d] and \"ids\" I64 [n], n >= 1", path,
                       g->P);
    }
    g->n = (int)e->shape[0];
    g->emb = malloc((size_t)g->n * g->P * sizeof *g->emb);
    g->ids = malloc((size_t)g->n * sizeof *g->ids);
    if (g->emb && g->ids) {
        st_to_f32(e, g->emb);
        st_to_i64(ids, g->ids);
    } else {
        st = tl_fail(err, TL_ERR_NOMEM, "out of memory for %d embeddings", g->n);
    }
    st_close(f);
    return st;
}

static tl_status gallery_save(const gallery *g, const char *path, tl_error *err) {
    st_tensor t[2] = {
        {.name = "embeddings",
         .dtype = ST_F32,
         .ndim = 2,
         .shape = {g->n, g->P},
         .data = g->emb,
         .nbytes = (size_t)g->n * g->P * sizeof(float)},
        {.name = "ids",
         .dtype = ST_I64,
         .ndim = 1,
         .shape = {g->n},
         .data = g->ids,
         .nbytes = (size_t)g->n * sizeof(int64_t)},
    };
    return st_write(path, t, 2, NULL, err);
}

static void gallery_free(gallery *g) {
    for (int i = 0; g->names && i < g->n; i++) free(g->names[i]);
    free(g->names);
    free(g->ids);
    free(g->emb);
}

/* The row of gallery item `item` (an integer id, or a file name of a folder gallery), or -1. */
static int gallery_row(const gallery *g, const json_t *item) {
    for (int i = 0; i < g->n; i++) {
        if (json_is_integer(item) && g->ids[i] == json_integer_value(item)) return i;
        if (json_is_string(item) && g->names && !strcmp(g->names[i], json_string_value(item)))
            return i;
    }
    return -1;
}

/* ---- turns ---- */

/* The reference image path of turn t into path: "image" relative to the turns file's folder, or
 * "gallery_item" of a folder gallery. */
static tl_status turn_image_path(const json_t *turn, const char *turns_path, const gallery *g,
                                 char *path, size_t cap, tl_error *err) {
    const char *image = json_string_value(json_object_get(turn, "image"));
    const json_t *item = json_object_get(turn, "gallery_item");
    if (!image == !item) return tl_fail(err, TL_ERR_INVALID, "needs one of image, gallery_item");
    if (image) {
        const char *slash = strrchr(turns_path, '/');
        int dir_len = image[0] == '/' || !slash ? 0 : (int)(slash - turns_path + 1);
        snprintf(path, cap, "%.*s%s", dir_len, turns_path, image);
        return TL_OK;
    }
    if (!g->names)
        return tl_fail(err, TL_ERR_INVALID,
                       "gallery_item needs an image folder gallery (an embeddings file has no "
                       "images)");
    int row = gallery_row(g, item);
    if (row < 0) return tl_fail(err, TL_ERR_NOT_FOUND, "gallery_item is not in the gallery");
    snprintf(path, cap, "%s/%s", g->root, g->names[row]);
    return TL_OK;
}

/* The turns array of the turns file (a new reference). */
static tl_status load_turns(const char *path, json_t **turns, tl_error *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return tl_fail(err, TL_ERR_FORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    json_t *arr = json_object_get(root, "turns");
    tl_status st = TL_OK;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        st = tl_fail(err, TL_ERR_FORMAT, "%s: needs a non-empty \"turns\" array", path);
    for (size_t i = 0; !st && i < json_array_size(arr); i++)
        if (!json_is_string(json_object_get(json_array_get(arr, i), "text")))
            st = tl_fail(err, TL_ERR_FORMAT, "%s: turn %zu has no \"text\" string", path, i + 1);
    if (!st) *turns = json_incref(arr);
    json_decref(root);
    return st;
}

/* ---- ranking and output ---- */

typedef struct ranked {
    float score;
    int row;
} ranked;

static const int64_t *rank_ids; /* qsort's tie-break: lower id first */

static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->score != b->score) return a->score < b->score ? 1 : -1;
    return (rank_ids[a->row] > rank_ids[b->row]) - (rank_ids[a->row] < rank_ids[b->row]);
}

/* All rows by q·g, best first, into order[g->n]. */
static void rank_gallery(const gallery *g, const float *q, ranked *order) {
    for (int i = 0; i < g->n; i++) {
        const float *e = g->emb + (size_t)i * g->P;
        double s = 0.0;
        for (int j = 0; j < g->P; j++) s += (double)q[j] * e[j];
        order[i] = (ranked){(float)s, i};
    }
    rank_ids = g->ids;
    qsort(order, (size_t)g->n, sizeof *order, by_score);
}

static json_t *turn_json(int t, const json_t *turn, const gallery *g, const ranked *top, int k) {
    json_t *results = json_array();
    for (int r = 0; r < k; r++) {
        int row = top[r].row;
        json_array_append_new(
            results, json_pack("{s:i, s:I, s:o, s:f}", "rank", r + 1, "id", (json_int_t)g->ids[row],
                               "name", g->names ? json_string(g->names[row]) : json_null(), "score",
                               (double)top[r].score));
    }
    return json_pack("{s:i, s:O, s:o}", "turn", t + 1, "text", json_object_get(turn, "text"),
                     "results", results);
}

static void print_turn_plain(int t, const gallery *g, const ranked *top, int k) {
    for (int r = 0; r < k; r++) {
        int row = top[r].row;
        printf("%d\t%d\t%lld\t%s\t%.6f\n", t + 1, r + 1, (long long)g->ids[row],
               g->names ? g->names[row] : "-", (double)top[r].score);
    }
}

/* ---- the replay ---- */

static tl_status run_turn(tl_model *m, tl_session *s, const session_args *a, const gallery *g,
                          const json_t *turn, int t, float *q, ranked *order, json_t *out,
                          tl_error *err) {
    char path[PATH_MAX];
    tl_image img = {0};
    tl_status st = turn_image_path(turn, a->turns_path, g, path, sizeof path, err);
    if (!st) st = img_load_file(path, NULL, &img, err);
    if (st) return tl_error_prefix(err, "turn %d", t + 1);
    st = tl_session_turn(m, s, &img, json_string_value(json_object_get(turn, "text")), q, err);
    img_free(&img);
    if (st) return st;
    rank_gallery(g, q, order);
    int k = a->k < g->n ? a->k : g->n;
    if (a->json)
        json_array_append_new(out, turn_json(t, turn, g, order, k));
    else
        print_turn_plain(t, g, order, k);
    return TL_OK;
}

static tl_status replay(tl_model *m, const session_args *a, const gallery *g, const json_t *turns,
                        json_t *out, tl_error *err) {
    tl_session *s = NULL;
    float *q = malloc((size_t)g->P * sizeof *q);
    ranked *order = malloc(((size_t)g->n + 1) * sizeof *order);
    if (!q || !order) {
        free(q);
        free(order);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    }
    tl_status st = tl_session_create(m, NULL, &s, err);
    for (size_t t = 0; !st && t < json_array_size(turns); t++)
        st = run_turn(m, s, a, g, json_array_get(turns, t), (int)t, q, order, out, err);
    tl_session_free(s);
    free(q);
    free(order);
    return st;
}

static tl_status load_gallery(tl_model *m, const session_args *a, gallery *g, tl_error *err) {
    struct stat sb;
    g->P = tl_model_get_info(m)->projection_dim;
    if (stat(a->gallery_path, &sb))
        return tl_fail(err, TL_ERR_NOT_FOUND, "%s: no such gallery", a->gallery_path);
    tl_status st = S_ISDIR(sb.st_mode) ? gallery_from_folder(m, a->gallery_path, g, err)
                                       : gallery_from_file(a->gallery_path, g, err);
    if (!st && a->save_path) st = gallery_save(g, a->save_path, err);
    return st;
}

static int run_session(const session_args *a) {
    tl_model_opts opts = {.session_decay = a->decay};
    tl_model *m = NULL;
    tl_error err = {0};
    gallery g = {0};
    json_t *turns = NULL, *out = json_array();
    tl_status st = tl_model_open(&m, a->model_dir, &opts, &err);
    if (!st) st = load_turns(a->turns_path, &turns, &err);
    if (!st) st = load_gallery(m, a, &g, &err);
    if (!st) st = replay(m, a, &g, turns, out, &err);
    if (!st && a->json) {
        const char *mode = tl_model_capabilities(m) & TL_CAP_NTM ? "ntm" : "decayed-sum";
        json_t *doc =
            json_pack("{s:s, s:i, s:O}", "memory", mode, "gallery_size", g.n, "turns", out);
        json_dumpf(doc, stdout, JSON_REAL_PRECISION(7));
        printf("\n");
        json_decref(doc);
    }
    if (st) fprintf(stderr, "tailor session: %s\n", err.message);
    json_decref(out);
    json_decref(turns);
    gallery_free(&g);
    tl_model_close(m);
    return st ? 1 : 0;
}

int cmd_session(int argc, char **argv) {
    session_args a = {.k = 5};
    int rc = parse_args(argc, argv, &a);
    if (rc == -1) usage(stdout);
    if (rc == 2) usage(stderr);
    return rc == -1 ? 0 : rc ? rc : run_session(&a);
}
