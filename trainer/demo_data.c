/* Fashion-MNIST Colours generator (see demo_data.h and proto/datasets.md): picks garments
 * per split, gives each garment its variants, then writes images, catalogue, captions,
 * triplets and transactions into a temporary directory that is renamed into place. Every
 * garment draws from its own RNG stream, so its items do not depend on the split's size. */
#include "demo_data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demo_captions.h"
#include "demo_render.h"
#include "fashion_mnist.h"

#define CAPTIONS_PER_ITEM        3
#define TRANSACTIONS_PER_GARMENT 2
#define IDS_PER_GARMENT          10 /* id = split base + garment number * 10 + variant */
#define PATH_MAX_LEN             4096
#define OUT_DIR_MAX              3900 /* leaves room for the names below it */

const char *const DEMO_COLOUR_NAMES[DEMO_N_COLOURS] = {"red",  "orange", "yellow", "green", "teal",
                                                       "blue", "purple", "pink",   "brown", "grey"};
const char *const DEMO_SHADE_NAMES[DEMO_N_SHADES] = {"light", "dark"};
const char *const DEMO_PATTERN_NAMES[DEMO_N_PATTERNS] = {"plain", "striped", "dotted"};

const demo_class_info DEMO_CLASSES[FMNIST_CLASSES] = {
    {"tops", "t-shirt", "a"},  {"bottoms", "trousers", "a pair of"},
    {"tops", "pullover", "a"}, {"dresses", "dress", "a"},
    {"tops", "coat", "a"},     {"footwear", "sandal", "a"},
    {"tops", "shirt", "a"},    {"footwear", "sneaker", "a"},
    {"bags", "bag", "a"},      {"footwear", "ankle boot", "a"},
};

typedef struct split_spec {
    const char *name; /* "train" or "test" */
    fmnist_split source;
    int garments;
    int64_t id_base;
} split_spec;

typedef struct garment {
    int source_index; /* image index in the Fashion-MNIST split file */
    int label;
    int64_t ids[DEMO_VARIANTS_PER_GARMENT];
    demo_attrs variants[DEMO_VARIANTS_PER_GARMENT];
} garment;

typedef struct split_files {
    FILE *catalogue, *captions, *triplets, *transactions;
} split_files;

typedef struct split_counts {
    int items, triplets, transactions;
} split_counts;

static int attrs_equal(demo_attrs a, demo_attrs b) {
    return a.colour == b.colour && a.shade == b.shade && a.pattern == b.pattern;
}

void demo_default_options(demo_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->train_garments = DEMO_DEFAULT_TRAIN_SIZE;
    opts->test_garments = DEMO_DEFAULT_TEST_SIZE;
}

/* ---- garments and their variants ---- */

static demo_attrs random_attrs(tl_rng *rng) {
    demo_attrs a = {(uint8_t)rng_below(rng, DEMO_N_COLOURS), (uint8_t)rng_below(rng, DEMO_N_SHADES),
                    (uint8_t)rng_below(rng, DEMO_N_PATTERNS)};
    return a;
}

/* Changes one attribute (60%), two (30%) or all three (10%) of a. */
static demo_attrs mutate_attrs(tl_rng *rng, demo_attrs a) {
    static const uint8_t CHANGE_SETS[10] = {1, 1, 2, 2, 4, 4, 3, 5, 6, 7}; /* colour|shade|pat */
    uint8_t change = CHANGE_SETS[rng_below(rng, 10)];
    if (change & 1)
        a.colour = (uint8_t)((a.colour + 1 + rng_below(rng, DEMO_N_COLOURS - 1)) % DEMO_N_COLOURS);
    if (change & 2) a.shade = (uint8_t)(1 - a.shade);
    if (change & 4) a.pattern = (uint8_t)((a.pattern + 1 + rng_below(rng, 2)) % DEMO_N_PATTERNS);
    return a;
}

/* A random walk through attribute space: each variant differs from the previous one in a few
 * attributes, and no two variants of a garment are equal. */
static void make_variants(tl_rng *rng, demo_attrs *variants) {
    variants[0] = random_attrs(rng);
    for (int k = 1; k < DEMO_VARIANTS_PER_GARMENT; k++) {
        int taken;
        do {
            variants[k] = mutate_attrs(rng, variants[k - 1]);
            taken = 0;
            for (int j = 0; j < k; j++) taken |= attrs_equal(variants[j], variants[k]);
        } while (taken);
    }
}

/* Picks n garment indices from set, as evenly over the 10 classes as n allows, in a seeded
 * random order. *out (n ints) is caller-owned. */
static tl_status select_garments(const fmnist_set *set, int n, tl_rng *rng, int *out,
                                 tl_error *err) {
    int *order = malloc((size_t)set->count * sizeof *order);
    if (!order) return tl_fail(err, TL_ERR_NOMEM, "out of memory selecting garments");
    for (int i = 0; i < set->count; i++) order[i] = i;
    rng_shuffle_ints(rng, order, set->count);
    int quota[FMNIST_CLASSES], taken = 0;
    for (int c = 0; c < FMNIST_CLASSES; c++)
        quota[c] = n / FMNIST_CLASSES + (c < n % FMNIST_CLASSES);
    for (int i = 0; i < set->count && taken < n; i++) {
        int label = set->labels[order[i]];
        if (quota[label] > 0) {
            quota[label]--;
            out[taken++] = order[i];
        }
    }
    free(order);
    if (taken < n)
        return tl_fail(err, TL_ERR_LIMIT, "only %d garments can be spread evenly over the classes",
                       taken);
    return TL_OK;
}

/* ---- writing ---- */

static tl_status write_json_line(FILE *f, json_t *value, const char *what, tl_error *err) {
    if (!value) return tl_fail(err, TL_ERR_NOMEM, "out of memory building %s", what);
    int rc = json_dumpf(value, f, JSON_COMPACT);
    json_decref(value);
    if (rc != 0 || fputc('\n', f) == EOF)
        return tl_fail(err, TL_ERR_IO, "writing %s: %s", what, strerror(errno));
    return TL_OK;
}

static tl_status write_png(const char *path, const uint8_t *rgb, tl_error *err) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = DEMO_IMAGE_SIDE;
    image.height = DEMO_IMAGE_SIDE;
    image.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&image, path, 0, rgb, 0, NULL))
        return tl_fail(err, TL_ERR_IO, "%s: %s", path, image.message);
    return TL_OK;
}

static void image_path(const split_spec *split, int64_t id, char *out, size_t size) {
    snprintf(out, size, "images/%s/%lld.png", split->name, (long long)id);
}

static json_t *product_json(const split_spec *split, const garment *g, int v,
                            const char *description) {
    demo_attrs a = g->variants[v];
    const demo_class_info *cls = &DEMO_CLASSES[g->label];
    char sku[96], title[DEMO_TEXT_MAX], image[96], source_index[16];
    snprintf(sku, sizeof sku, "FMC-%s%05d-%s-%c-%s", split->source == FMNIST_TRAIN ? "TR" : "TE",
             g->source_index, DEMO_COLOUR_NAMES[a.colour], DEMO_SHADE_NAMES[a.shade][0],
             DEMO_PATTERN_NAMES[a.pattern]);
    for (char *p = sku; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    demo_title(g->label, a, title);
    image_path(split, g->ids[v], image, sizeof image);
    snprintf(source_index, sizeof source_index, "%d", g->source_index);
    return json_pack(
        "{sI ss ss ss ss ss ss s{ss ss ss ss ss} ss}", "id", (json_int_t)g->ids[v], "sku", sku,
        "title", title, "description", description, "category", cls->category, "subcategory",
        cls->subcategory, "image", image, "attributes", "colour", DEMO_COLOUR_NAMES[a.colour],
        "shade", DEMO_SHADE_NAMES[a.shade], "pattern", DEMO_PATTERN_NAMES[a.pattern], "class",
        FMNIST_CLASS_NAMES[g->label], "source_index", source_index, "split", split->name);
}

/* Captions from CAPTIONS_PER_ITEM distinct templates; the first, as a sentence, is the
 * product description. */
static tl_status write_item_text(tl_rng *rng, const split_spec *split, const garment *g, int v,
                                 split_files *files, tl_error *err) {
    int templates[DEMO_N_ITEM_TEMPLATES];
    for (int i = 0; i < DEMO_N_ITEM_TEMPLATES; i++) templates[i] = i;
    rng_shuffle_ints(rng, templates, DEMO_N_ITEM_TEMPLATES);
    json_t *captions = json_array();
    char caption[DEMO_TEXT_MAX], description[DEMO_TEXT_MAX + 1] = "";
    for (int i = 0; i < CAPTIONS_PER_ITEM; i++) {
        demo_item_caption(rng, templates[i], g->label, g->variants[v], caption);
        if (i == 0)
            snprintf(description, sizeof description, "%c%s.", caption[0] - 'a' + 'A', caption + 1);
        json_array_append_new(captions, json_string(caption));
    }
    tl_status st = write_json_line(files->catalogue, product_json(split, g, v, description),
                                   "the catalogue", err);
    json_t *line = json_pack("{sI so}", "id", (json_int_t)g->ids[v], "captions", captions);
    if (st) {
        json_decref(line);
        return st;
    }
    return write_json_line(files->captions, line, "the captions", err);
}

static tl_status write_images(const char *root, const split_spec *split, const garment *g,
                              const fmnist_set *set, tl_error *err) {
    uint8_t rgb[DEMO_IMAGE_SIDE * DEMO_IMAGE_SIDE * 3];
    char rel[96], path[PATH_MAX_LEN];
    for (int v = 0; v < DEMO_VARIANTS_PER_GARMENT; v++) {
        demo_render_garment(set->pixels + (size_t)g->source_index * FMNIST_PIXELS, g->variants[v],
                            rgb);
        image_path(split, g->ids[v], rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", root, rel);
        tl_status st = write_png(path, rgb, err);
        if (st) return st;
    }
    return TL_OK;
}

static json_t *turn_json(tl_rng *rng, const garment *g, int ref, int target) {
    char caption[DEMO_TEXT_MAX];
    demo_relative_caption(rng, g->variants[ref], g->variants[target], caption);
    return json_pack("{sI ss sI}", "reference", (json_int_t)g->ids[ref], "caption", caption,
                     "target", (json_int_t)g->ids[target]);
}

/* One triplet per ordered pair of distinct variants. */
static tl_status write_triplets(tl_rng *rng, const garment *g, FILE *f, split_counts *counts,
                                tl_error *err) {
    for (int ref = 0; ref < DEMO_VARIANTS_PER_GARMENT; ref++) {
        for (int target = 0; target < DEMO_VARIANTS_PER_GARMENT; target++) {
            if (ref == target) continue;
            tl_status st = write_json_line(f, turn_json(rng, g, ref, target), "the triplets", err);
            if (st) return st;
            counts->triplets++;
        }
    }
    return TL_OK;
}

/* Chains of 2..4 turns through distinct variants of the garment. */
static tl_status write_transactions(tl_rng *rng, const garment *g, FILE *f, split_counts *counts,
                                    tl_error *err) {
    for (int t = 0; t < TRANSACTIONS_PER_GARMENT; t++) {
        int order[DEMO_VARIANTS_PER_GARMENT];
        for (int v = 0; v < DEMO_VARIANTS_PER_GARMENT; v++) order[v] = v;
        rng_shuffle_ints(rng, order, DEMO_VARIANTS_PER_GARMENT);
        int n_turns = DEMO_MIN_TURNS + (int)rng_below(rng, DEMO_MAX_TURNS - DEMO_MIN_TURNS + 1);
        json_t *turns = json_array();
        for (int k = 0; k < n_turns; k++)
            json_array_append_new(turns, turn_json(rng, g, order[k], order[k + 1]));
        json_t *line = json_pack("{so sI}", "turns", turns, "final_target",
                                 (json_int_t)g->ids[order[n_turns]]);
        tl_status st = write_json_line(f, line, "the transactions", err);
        if (st) return st;
        counts->transactions++;
    }
    return TL_OK;
}

static tl_status write_garment(const char *root, const split_spec *split, const garment *g,
                               const fmnist_set *set, tl_rng *rng, split_files *files,
                               split_counts *counts, tl_error *err) {
    tl_status st = write_images(root, split, g, set, err);
    for (int v = 0; v < DEMO_VARIANTS_PER_GARMENT && !st; v++) {
        st = write_item_text(rng, split, g, v, files, err);
        counts->items++;
    }
    if (!st) st = write_triplets(rng, g, files->triplets, counts, err);
    if (!st) st = write_transactions(rng, g, files->transactions, counts, err);
    return st;
}

static tl_status open_output(const char *root, const char *name, FILE **out, tl_error *err) {
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/%s", root, name);
    *out = fopen(path, "w");
    if (!*out) return tl_fail(err, TL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return TL_OK;
}

/* Closes f, reporting a write error that happened anywhere before; *f becomes NULL. */
static tl_status close_output(FILE **f, const char *name, tl_status st, tl_error *err) {
    if (!*f) return st;
    int failed = ferror(*f) | fclose(*f);
    *f = NULL;
    if (!st && failed) st = tl_fail(err, TL_ERR_IO, "writing %s failed", name);
    return st;
}

static tl_status make_dir(const char *root, const char *name, tl_error *err) {
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/%s", root, name);
    if (mkdir(path, 0755) != 0)
        return tl_fail(err, TL_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    return TL_OK;
}

static tl_status generate_garments(const char *root, const split_spec *split,
                                   const demo_options *opts, const fmnist_set *set,
                                   const int *chosen, split_files *files, split_counts *counts,
                                   tl_error *err) {
    for (int i = 0; i < split->garments; i++) {
        garment g = {.source_index = chosen[i], .label = set->labels[chosen[i]]};
        tl_rng rng;
        rng_seed(&rng, opts->seed, (uint64_t)(split->source + 1) << 32 | (uint64_t)chosen[i]);
        make_variants(&rng, g.variants);
        for (int v = 0; v < DEMO_VARIANTS_PER_GARMENT; v++)
            g.ids[v] = split->id_base + (int64_t)i * IDS_PER_GARMENT + v;
        tl_status st = write_garment(root, split, &g, set, &rng, files, counts, err);
        if (st) return st;
        if (opts->progress) opts->progress(opts->progress_ctx, split->name, i + 1, split->garments);
    }
    return TL_OK;
}

/* Writes one split: its images, its catalogue and caption lines (into the shared files),
 * and its own triplets and transactions files. */
static tl_status generate_split(const char *root, const split_spec *split, const demo_options *opts,
                                split_files *files, split_counts *counts, tl_error *err) {
    fmnist_set set;
    tl_status st = fmnist_load(opts->dataset_dir, split->source, &set, err);
    if (st) return st;
    int *chosen = malloc((size_t)split->garments * sizeof *chosen);
    if (!chosen) {
        fmnist_free(&set);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory selecting garments");
    }
    tl_rng rng;
    rng_seed(&rng, opts->seed, (uint64_t)split->source + 1);
    st = select_garments(&set, split->garments, &rng, chosen, err);
    char name[64], triplets_name[64], transactions_name[64];
    snprintf(name, sizeof name, "images/%s", split->name);
    snprintf(triplets_name, sizeof triplets_name, "triplets-%s.jsonl", split->name);
    snprintf(transactions_name, sizeof transactions_name, "transactions-%s.jsonl", split->name);
    if (!st) st = make_dir(root, name, err);
    if (!st) st = open_output(root, triplets_name, &files->triplets, err);
    if (!st) st = open_output(root, transactions_name, &files->transactions, err);
    if (!st) st = generate_garments(root, split, opts, &set, chosen, files, counts, err);
    st = close_output(&files->triplets, triplets_name, st, err);
    st = close_output(&files->transactions, transactions_name, st, err);
    free(chosen);
    fmnist_free(&set);
    return st;
}

static tl_status write_manifest(const char *root, const demo_options *opts,
                                const split_spec *splits, const split_counts *counts,
                                tl_error *err) {
    json_t *per_split = json_object();
    for (int s = 0; s < 2; s++)
        json_object_set_new(per_split, splits[s].name,
                            json_pack("{ss si si si si}", "source",
                                      fmnist_split_name(splits[s].source), "garments",
                                      splits[s].garments, "items", counts[s].items, "triplets",
                                      counts[s].triplets, "transactions", counts[s].transactions));
    json_t *manifest =
        json_pack("{ss si sI si si so}", "name", "Fashion-MNIST Colours", "format_version", 1,
                  "seed", (json_int_t)opts->seed, "image_size", DEMO_IMAGE_SIDE,
                  "variants_per_garment", DEMO_VARIANTS_PER_GARMENT, "splits", per_split);
    char path[PATH_MAX_LEN];
    snprintf(path, sizeof path, "%s/dataset.json", root);
    int rc = manifest ? json_dump_file(manifest, path, JSON_INDENT(2)) : -1;
    json_decref(manifest);
    if (rc != 0) return tl_fail(err, TL_ERR_IO, "%s: cannot write", path);
    return TL_OK;
}

static tl_status generate_into(const char *root, const demo_options *opts, tl_error *err) {
    const split_spec splits[2] = {
        {"train", FMNIST_TRAIN, opts->train_garments, 1000000},
        {"test", FMNIST_T10K, opts->test_garments, 2000000},
    };
    split_counts counts[2] = {{0, 0, 0}, {0, 0, 0}};
    split_files files = {NULL, NULL, NULL, NULL};
    tl_status st = make_dir(root, "images", err);
    if (!st) st = open_output(root, "catalogue.jsonl", &files.catalogue, err);
    if (!st) st = open_output(root, "captions.jsonl", &files.captions, err);
    for (int s = 0; s < 2 && !st; s++)
        st = generate_split(root, &splits[s], opts, &files, &counts[s], err);
    st = close_output(&files.catalogue, "catalogue.jsonl", st, err);
    st = close_output(&files.captions, "captions.jsonl", st, err);
    if (!st) st = write_manifest(root, opts, splits, counts, err);
    return st;
}

/* ---- the output directory ---- */

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    return remove(path);
}

static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int is_empty_dir(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return 0;
    int entries = 0;
    for (struct dirent *e; (e = readdir(dir));)
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(dir);
    return entries == 0;
}

/* out_dir may not exist, or be an empty directory (rename replaces those). */
static tl_status check_out_dir(const char *out_dir, tl_error *err) {
    struct stat st;
    if (stat(out_dir, &st) != 0 || is_empty_dir(out_dir)) return TL_OK;
    return tl_fail(err, TL_ERR_INVALID, "%s already exists; remove it or choose another --out",
                   out_dir);
}

/* Flushes everything under dir to disk before the rename makes it visible. */
static tl_status sync_tree(const char *dir, tl_error *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0 || syncfs(fd) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return tl_fail(err, TL_ERR_IO, "%s: cannot sync: %s", dir, strerror(e));
    }
    close(fd);
    return TL_OK;
}

static tl_status check_options(const demo_options *opts, tl_error *err) {
    if (opts->train_garments < FMNIST_CLASSES || opts->train_garments > 60000)
        return tl_fail(err, TL_ERR_INVALID, "train size %d: must be 10..60000",
                       opts->train_garments);
    if (opts->test_garments < FMNIST_CLASSES || opts->test_garments > 10000)
        return tl_fail(err, TL_ERR_INVALID, "test size %d: must be 10..10000", opts->test_garments);
    if (opts->seed > (uint64_t)INT64_MAX)
        return tl_fail(err, TL_ERR_INVALID, "seed must be below 2^63");
    return TL_OK;
}

tl_status demo_generate(const char *out_dir, const demo_options *opts, tl_error *err) {
    tl_status st = check_options(opts, err);
    if (st) return st;
    size_t len = strlen(out_dir);
    while (len > 1 && out_dir[len - 1] == '/') len--;
    if (len == 0 || len >= OUT_DIR_MAX)
        return tl_fail(err, TL_ERR_INVALID, "bad output directory '%s'", out_dir);
    char target[OUT_DIR_MAX], temp[OUT_DIR_MAX + 16];
    snprintf(target, sizeof target, "%.*s", (int)len, out_dir);
    st = check_out_dir(target, err);
    if (st) return st;
    snprintf(temp, sizeof temp, "%s.tmp-XXXXXX", target);
    if (!mkdtemp(temp))
        return tl_fail(err, TL_ERR_IO, "cannot create a temporary directory beside %s: %s", target,
                       strerror(errno));
    st = generate_into(temp, opts, err);
    if (!st) st = sync_tree(temp, err);
    if (!st && rename(temp, target) != 0)
        st = tl_fail(err, TL_ERR_IO, "cannot rename %s to %s: %s", temp, target, strerror(errno));
    if (st) remove_tree(temp);
    return st;
}
