/* "Fashion-MNIST Colours": the built-in demo data set, made deterministically from Debian's
 * Fashion-MNIST. Each garment becomes several catalogue items (colour, shade, pattern
 * variants) with captions, TGIR triplets and multi-turn transactions (proto/datasets.md).
 * This header holds the attribute vocabulary and the generator. Not for: training itself. */
#ifndef TL_TRAINER_DEMO_DATA_H
#define TL_TRAINER_DEMO_DATA_H

#include <stdint.h>

#include "error.h"

#define DEMO_IMAGE_SIDE           64
#define DEMO_VARIANTS_PER_GARMENT 5 /* enough distinct items for a 4-turn transaction */
#define DEMO_MIN_TURNS            2
#define DEMO_MAX_TURNS            4
#define DEMO_DEFAULT_TRAIN_SIZE   3000
#define DEMO_DEFAULT_TEST_SIZE    1000

enum { DEMO_N_COLOURS = 10 };
typedef enum demo_shade { DEMO_LIGHT, DEMO_DARK, DEMO_N_SHADES } demo_shade;
typedef enum demo_pattern { DEMO_PLAIN, DEMO_STRIPED, DEMO_DOTTED, DEMO_N_PATTERNS } demo_pattern;

typedef struct demo_attrs {
    uint8_t colour;  /* index into DEMO_COLOUR_NAMES */
    uint8_t shade;   /* demo_shade */
    uint8_t pattern; /* demo_pattern */
} demo_attrs;

extern const char *const DEMO_COLOUR_NAMES[DEMO_N_COLOURS];   /* "red", "orange", ... */
extern const char *const DEMO_SHADE_NAMES[DEMO_N_SHADES];     /* "light", "dark" */
extern const char *const DEMO_PATTERN_NAMES[DEMO_N_PATTERNS]; /* "plain", "striped", "dotted" */

/* How a Fashion-MNIST class (label 0..9) is sold: its category ("tops", "bottoms", "dresses",
 * "footwear", "bags"), its subcategory, which is also the noun captions use ("t-shirt",
 * "trousers", ...), and the article before an adjective ("a"; "a pair of" for trousers). */
typedef struct demo_class_info {
    const char *category;
    const char *subcategory;
    const char *article;
} demo_class_info;

extern const demo_class_info DEMO_CLASSES[10];

/* Called after each garment is written: split is "train" or "test". */
typedef void (*demo_progress_fn)(void *ctx, const char *split, int done, int total);

typedef struct demo_options {
    const char *dataset_dir; /* Fashion-MNIST files; NULL = FMNIST_DEFAULT_DIR */
    uint64_t seed;
    int train_garments;        /* 10..60000 */
    int test_garments;         /* 10..10000 */
    demo_progress_fn progress; /* may be NULL */
    void *progress_ctx;
} demo_options;

/* Seed 0, DEMO_DEFAULT_TRAIN_SIZE and DEMO_DEFAULT_TEST_SIZE garments, no progress. */
void demo_default_options(demo_options *opts);

/* Writes the whole data set into out_dir, which must not exist yet (or be an empty
 * directory): everything goes to a temporary sibling directory first, which is renamed to
 * out_dir only when complete, and removed on failure. Same options, same bytes. */
tl_status demo_generate(const char *out_dir, const demo_options *opts, tl_error *err);

#endif
