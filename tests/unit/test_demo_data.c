/* Fashion-MNIST Colours (trainer/demo_data.h): generates small sets and checks determinism,
 * the catalogue, images, triplets, transactions and split provenance, and the errors. Needs
 * Debian's dataset-fashion-mnist (deploy/setup.sh installs it). */
#include <dirent.h>
#include <jansson.h>
#include <png.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#include "demo_data.h"
#include "demo_render.h"
#include "fashion_mnist.h"
#include "test_util.h"

#define TRAIN_SIZE 20
#define TEST_SIZE  30
#define MAX_ITEMS  ((TRAIN_SIZE + TEST_SIZE) * DEMO_VARIANTS_PER_GARMENT)

typedef struct item {
    int64_t id;
    char split[8], colour[16], shade[8], pattern[8], cls[16], category[16], image[64];
    int source_index;
} item;

static char root[256], dir_a[300], dir_b[300], dir_c[300];
static item items[MAX_ITEMS];
static int n_items;

static tl_status generate(const char *dir, uint64_t seed) {
    demo_options opts;
    demo_default_options(&opts);
    opts.seed = seed;
    opts.train_garments = TRAIN_SIZE;
    opts.test_garments = TEST_SIZE;
    tl_error err;
    tl_status st = demo_generate(dir, &opts, &err);
    if (st) printf("# demo_generate %s: %s\n", dir, err.message);
    return st;
}

/* DIR/NAME whole, NUL-terminated (caller frees); NULL if unreadable. */
static char *read_file(const char *dir, const char *name, size_t *len) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return tu_read_file(path, len);
}

static int files_equal(const char *a, const char *b, const char *name) {
    size_t la = 0, lb = 0;
    char *x = read_file(a, name, &la), *y = read_file(b, name, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static void copy_string(char *dst, size_t size, json_t *obj, const char *key) {
    const char *s = json_string_value(json_object_get(obj, key));
    snprintf(dst, size, "%s", s ? s : "");
}

/* Ends the line at line with a NUL; returns where the next one starts (the text's end after
 * the last line). */
static char *cut_line(char *line) {
    char *end = strchr(line, '\n');
    if (!end) return line + strlen(line);
    *end = '\0';
    return end + 1;
}

/* Parses catalogue.jsonl of dir into items[]; returns the number of malformed lines. */
static int load_catalogue(const char *dir) {
    size_t len;
    char *text = read_file(dir, "catalogue.jsonl", &len);
    int bad = 0;
    n_items = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = cut_line(line);
        json_t *obj = json_loads(line, 0, NULL);
        json_t *attrs = json_object_get(obj, "attributes");
        const char *keys[] = {"sku",         "title", "description", "category",
                              "subcategory", "image", "split"};
        int ok = obj && json_is_integer(json_object_get(obj, "id")) && json_is_object(attrs) &&
                 n_items < MAX_ITEMS;
        for (int k = 0; k < 7 && ok; k++)
            ok = json_string_length(json_object_get(obj, keys[k])) > 0;
        if (ok) {
            item *it = &items[n_items++];
            it->id = json_integer_value(json_object_get(obj, "id"));
            copy_string(it->split, sizeof it->split, obj, "split");
            copy_string(it->category, sizeof it->category, obj, "category");
            copy_string(it->image, sizeof it->image, obj, "image");
            copy_string(it->colour, sizeof it->colour, attrs, "colour");
            copy_string(it->shade, sizeof it->shade, attrs, "shade");
            copy_string(it->pattern, sizeof it->pattern, attrs, "pattern");
            copy_string(it->cls, sizeof it->cls, attrs, "class");
            const char *index = json_string_value(json_object_get(attrs, "source_index"));
            it->source_index = index ? atoi(index) : -1;
        }
        bad += !ok;
        json_decref(obj);
    }
    free(text);
    return bad;
}

static const item *find_item(int64_t id) {
    for (int i = 0; i < n_items; i++)
        if (items[i].id == id) return &items[i];
    return NULL;
}

static int same_garment(const item *a, const item *b) {
    return !strcmp(a->split, b->split) && a->source_index == b->source_index;
}

static int same_attrs(const item *a, const item *b) {
    return !strcmp(a->colour, b->colour) && !strcmp(a->shade, b->shade) &&
           !strcmp(a->pattern, b->pattern);
}

static int mentions_any(const char *caption, const char *const *words) {
    for (; *words; words++)
        if (strstr(caption, *words)) return 1;
    return 0;
}

/* Every attribute that changes from ref to target is named in the caption. */
static int caption_names_changes(const char *caption, const item *ref, const item *target) {
    static const char *const DARK[] = {"dark", "deep", NULL}, *const LIGHT[] = {"light", "pale",
                                                                                NULL};
    static const char *const STRIPED[] = {"stripe", NULL}, *const DOTTED[] = {"dot", NULL};
    static const char *const PLAIN[] = {"plain", "solid", "remove", NULL};
    if (strcmp(ref->colour, target->colour) && !strstr(caption, target->colour)) return 0;
    if (strcmp(ref->shade, target->shade) &&
        !mentions_any(caption, !strcmp(target->shade, "dark") ? DARK : LIGHT))
        return 0;
    if (strcmp(ref->pattern, target->pattern)) {
        const char *const *words = !strcmp(target->pattern, "striped")  ? STRIPED
                                   : !strcmp(target->pattern, "dotted") ? DOTTED
                                                                        : PLAIN;
        if (!mentions_any(caption, words)) return 0;
    }
    return 1;
}

/* A reference -> target turn is valid: both exist, same garment, different attributes, and
 * the caption names the changes. */
static int valid_turn(json_t *turn) {
    const item *ref = find_item(json_integer_value(json_object_get(turn, "reference")));
    const item *target = find_item(json_integer_value(json_object_get(turn, "target")));
    const char *caption = json_string_value(json_object_get(turn, "caption"));
    if (!ref || !target || !caption) return 0;
    if (!same_garment(ref, target) || same_attrs(ref, target)) return 0;
    if (!caption_names_changes(caption, ref, target)) {
        printf("#   caption '%s' misses a change %s/%s/%s -> %s/%s/%s\n", caption, ref->shade,
               ref->colour, ref->pattern, target->shade, target->colour, target->pattern);
        return 0;
    }
    return 1;
}

/* Calls check on each parsed line of dir/name; returns the number of lines, or -1 if the
 * file is missing; *failed counts lines check rejected. */
static int each_line(const char *dir, const char *name, int (*check)(json_t *), int *failed) {
    size_t len;
    char *text = read_file(dir, name, &len);
    if (!text) return -1;
    int lines = 0;
    *failed = 0;
    for (char *line = text, *next; *line; line = next) {
        next = cut_line(line);
        json_t *obj = json_loads(line, 0, NULL);
        *failed += !obj || !check(obj);
        json_decref(obj);
        lines++;
    }
    free(text);
    return lines;
}

static int valid_transaction(json_t *obj) {
    json_t *turns = json_object_get(obj, "turns");
    size_t n = json_array_size(turns);
    if (n < DEMO_MIN_TURNS || n > DEMO_MAX_TURNS) return 0;
    for (size_t t = 0; t < n; t++) {
        json_t *turn = json_array_get(turns, t);
        if (!valid_turn(turn)) return 0;
        json_t *next = json_array_get(turns, t + 1);
        if (next &&
            !json_equal(json_object_get(turn, "target"), json_object_get(next, "reference")))
            return 0;
    }
    return json_equal(json_object_get(obj, "final_target"),
                      json_object_get(json_array_get(turns, n - 1), "target"));
}

/* Reads a PNG as 8-bit RGB into a fresh buffer (caller frees); *format receives the file's
 * own format. NULL on error. */
static uint8_t *read_png(const char *dir, const char *rel, png_uint_32 *w, png_uint_32 *h,
                         png_uint_32 *format) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, path)) return NULL;
    *w = image.width;
    *h = image.height;
    *format = image.format;
    image.format = PNG_FORMAT_RGB;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, NULL, rgb, 0, NULL)) {
        free(rgb);
        return NULL;
    }
    return rgb;
}

TEST(same_seed_same_bytes) {
    const char *files[] = {
        "catalogue.jsonl",     "captions.jsonl",           "triplets-train.jsonl",
        "triplets-test.jsonl", "transactions-train.jsonl", "transactions-test.jsonl",
        "dataset.json"};
    for (int i = 0; i < 7; i++) CHECKF(files_equal(dir_a, dir_b, files[i]), "%s", files[i]);
    REQUIRE(load_catalogue(dir_a) == 0 && n_items == MAX_ITEMS);
    for (int i = 0; i < n_items; i++)
        CHECKF(files_equal(dir_a, dir_b, items[i].image), "%s", items[i].image);
}

TEST(different_seed_different_data) {
    CHECK(!files_equal(dir_a, dir_c, "catalogue.jsonl"));
    CHECK(!files_equal(dir_a, dir_c, "triplets-test.jsonl"));
    CHECK(!files_equal(dir_a, dir_c, "transactions-train.jsonl"));
}

static int count_distinct(size_t offset) {
    const char *seen[MAX_ITEMS];
    int n = 0;
    for (int i = 0; i < n_items; i++) {
        const char *v = (const char *)&items[i] + offset;
        int found = 0;
        for (int j = 0; j < n && !found; j++) found = !strcmp(seen[j], v);
        if (!found) seen[n++] = v;
    }
    return n;
}

TEST(catalogue_is_complete) {
    REQUIRE(load_catalogue(dir_a) == 0);
    CHECK(n_items == MAX_ITEMS);
    for (int i = 0; i < n_items; i++)
        for (int j = i + 1; j < n_items; j++) {
            CHECKF(items[i].id != items[j].id, "id %lld twice", (long long)items[i].id);
            CHECKF(!(same_garment(&items[i], &items[j]) && same_attrs(&items[i], &items[j])),
                   "items %lld and %lld are the same product", (long long)items[i].id,
                   (long long)items[j].id);
        }
    CHECK(count_distinct(offsetof(item, colour)) >= 8);
    CHECK(count_distinct(offsetof(item, shade)) == 2);
    CHECK(count_distinct(offsetof(item, pattern)) == 3);
    CHECK(count_distinct(offsetof(item, category)) == 5);
    CHECK(count_distinct(offsetof(item, cls)) == 10);
}

TEST(images_are_rgb_png_at_least_64) {
    REQUIRE(load_catalogue(dir_a) == 0 && n_items > 0);
    for (int i = 0; i < n_items; i++) {
        png_uint_32 w = 0, h = 0, format = 0;
        uint8_t *rgb = read_png(dir_a, items[i].image, &w, &h, &format);
        CHECKF(rgb && w >= 64 && h >= 64 && format == PNG_FORMAT_RGB, "%s: %ux%u format %u",
               items[i].image, w, h, format);
        free(rgb);
    }
}

/* Both files (train, test) of dir_a hold at least TRAIN_SIZE lines (what: their records), every
 * one of which valid accepts. */
static void check_jsonl_files(const char *const files[2], int (*valid)(json_t *),
                              const char *what) {
    for (int f = 0; f < 2; f++) {
        int failed = 0, lines = each_line(dir_a, files[f], valid, &failed);
        CHECKF(lines >= TRAIN_SIZE, "%s: %d %s", files[f], lines, what);
        CHECKF(failed == 0, "%s: %d bad %s", files[f], failed, what);
    }
}

TEST(triplets_change_named_attributes_of_one_garment) {
    REQUIRE(load_catalogue(dir_a) == 0);
    const char *const files[2] = {"triplets-train.jsonl", "triplets-test.jsonl"};
    check_jsonl_files(files, valid_turn, "triplets");
}

TEST(transactions_are_chains_of_2_to_4_turns) {
    REQUIRE(load_catalogue(dir_a) == 0);
    const char *const files[2] = {"transactions-train.jsonl", "transactions-test.jsonl"};
    check_jsonl_files(files, valid_transaction, "transactions");
}

/* Each image is exactly its recorded source garment of its own split, rendered with its
 * attributes: train items come from the train file, test items from t10k. */
TEST(items_come_from_their_split) {
    REQUIRE(load_catalogue(dir_a) == 0);
    fmnist_set sets[2];
    tl_error err;
    REQUIRE(fmnist_load(NULL, FMNIST_TRAIN, &sets[0], &err) == TL_OK);
    REQUIRE(fmnist_load(NULL, FMNIST_T10K, &sets[1], &err) == TL_OK);
    int seen[2] = {0, 0};
    uint8_t expected[DEMO_IMAGE_SIDE * DEMO_IMAGE_SIDE * 3];
    for (int i = 0; i < n_items; i++) {
        const item *it = &items[i];
        int s = !strcmp(it->split, "test");
        CHECKF(s || !strcmp(it->split, "train"), "split '%s'", it->split);
        seen[s]++;
        REQUIRE(it->source_index >= 0 && it->source_index < sets[s].count);
        int label = sets[s].labels[it->source_index];
        CHECKF(!strcmp(it->cls, FMNIST_CLASS_NAMES[label]), "%lld: class %s, source says %s",
               (long long)it->id, it->cls, FMNIST_CLASS_NAMES[label]);
        demo_attrs a = {0, !strcmp(it->shade, "dark"), 0};
        while (strcmp(DEMO_COLOUR_NAMES[a.colour], it->colour) && a.colour < DEMO_N_COLOURS - 1)
            a.colour++;
        while (strcmp(DEMO_PATTERN_NAMES[a.pattern], it->pattern) &&
               a.pattern < DEMO_N_PATTERNS - 1)
            a.pattern++;
        demo_render_garment(sets[s].pixels + (size_t)it->source_index * FMNIST_PIXELS, a, expected);
        png_uint_32 w, h, format;
        uint8_t *rgb = read_png(dir_a, it->image, &w, &h, &format);
        CHECKF(rgb && w == DEMO_IMAGE_SIDE && !memcmp(rgb, expected, sizeof expected),
               "%s is not %s image %d", it->image, s ? "t10k" : "train", it->source_index);
        free(rgb);
    }
    CHECK(seen[0] == TRAIN_SIZE * DEMO_VARIANTS_PER_GARMENT);
    CHECK(seen[1] == TEST_SIZE * DEMO_VARIANTS_PER_GARMENT);
    fmnist_free(&sets[0]);
    fmnist_free(&sets[1]);
}

TEST(errors_are_clear_and_leave_nothing) {
    demo_options opts;
    demo_default_options(&opts);
    opts.train_garments = opts.test_garments = 10;
    char out[320], missing[320];
    snprintf(out, sizeof out, "%s/err", root);
    snprintf(missing, sizeof missing, "%s/no-dataset", root);
    opts.dataset_dir = missing;
    tl_error err;
    CHECK(demo_generate(out, &opts, &err) == TL_ERR_NOT_FOUND);
    CHECKF(strstr(err.message, "deploy/setup.sh") != NULL, "%s", err.message);
    CHECK(access(out, F_OK) != 0);
    opts.dataset_dir = NULL;
    CHECK(demo_generate(dir_a, &opts, &err) == TL_ERR_INVALID); /* exists and is not empty */
    CHECKF(strstr(err.message, "already exists") != NULL, "%s", err.message);
    opts.train_garments = 9;
    CHECK(demo_generate(out, &opts, &err) == TL_ERR_INVALID);
    int leftovers = 0;
    DIR *d = opendir(root);
    for (struct dirent *e; d && (e = readdir(d));) leftovers += strstr(e->d_name, ".tmp-") != NULL;
    if (d) closedir(d);
    CHECK(leftovers == 0);
}

int main(void) {
    if (tu_make_temp_dir(root, sizeof root, "test_demo_data")) return 1;
    snprintf(dir_a, sizeof dir_a, "%s/a", root);
    snprintf(dir_b, sizeof dir_b, "%s/b", root);
    snprintf(dir_c, sizeof dir_c, "%s/c", root);
    int ready = !generate(dir_a, 7) && !generate(dir_b, 7) && !generate(dir_c, 8);
    printf("%s 0 - generate three small sets\n", ready ? "#" : "# FAILED:");
    RUN(same_seed_same_bytes);
    RUN(different_seed_different_data);
    RUN(catalogue_is_complete);
    RUN(images_are_rgb_png_at_least_64);
    RUN(triplets_change_named_attributes_of_one_garment);
    RUN(transactions_are_chains_of_2_to_4_turns);
    RUN(items_come_from_their_split);
    RUN(errors_are_clear_and_leave_nothing);
    tu_remove_tree(root);
    return th_done();
}
