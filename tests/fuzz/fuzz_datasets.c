/* libFuzzer target for the trainer's data set readers (trainer/dataset_*.c, proto/datasets.md):
 * the first byte picks the format (catalog JSONL + triplets + transactions, demo, FashionIQ
 * splits + captions, multi-turn FashionIQ) and a record limit; the rest, split at 0x1e bytes,
 * fills that format's files in a private tmpfs directory, and dataset_open reads them. Every
 * accepted data set must only refer to items it holds. Not for: FashionGen's HDF5 files. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"

enum { MAX_FILES = 4 };

typedef struct format {
    int kind; /* train_dataset_kind */
    const char *files[MAX_FILES];
} format;

static const format FORMATS[] = {
    {TRAIN_DATA_CATALOG, {"catalog.jsonl", "triplets.jsonl", "transactions.jsonl"}},
    {TRAIN_DATA_DEMO,
     {"catalogue.jsonl", "captions.jsonl", "triplets-train.jsonl", "transactions-train.jsonl"}},
    {TRAIN_DATA_FASHIONIQ,
     {"image_splits/split.dress.train.json", "captions/cap.dress.train.json"}},
    {TRAIN_DATA_FASHIONIQ_MULTITURN, {"dress.train.json"}},
};
enum { N_FORMATS = sizeof FORMATS / sizeof FORMATS[0] };

static char dir[PATH_MAX];

static void remove_files(void) {
    char path[PATH_MAX + 64];
    for (size_t f = 0; f < N_FORMATS; f++)
        for (size_t i = 0; i < MAX_FILES && FORMATS[f].files[i]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, FORMATS[f].files[i]);
            unlink(path);
        }
    snprintf(path, sizeof path, "%s/image_splits", dir), rmdir(path);
    snprintf(path, sizeof path, "%s/captions", dir), rmdir(path);
    rmdir(dir);
}

/* The scratch directory (on tmpfs when /dev/shm exists), made once and removed at exit. */
static const char *scratch_dir(void) {
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "%s/fuzz_datasets.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) return dir[0] = '\0', NULL;
    char sub[PATH_MAX + 32];
    snprintf(sub, sizeof sub, "%s/image_splits", dir), mkdir(sub, 0700);
    snprintf(sub, sizeof sub, "%s/captions", dir), mkdir(sub, 0700);
    atexit(remove_files);
    return dir;
}

static int write_file(const char *name, const uint8_t *data, size_t size) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t written = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) || written != size ? -1 : 0;
}

/* Writes the files of fmt: part i of data (parts end at 0x1e) goes to file i, empty when the
 * data has fewer parts. */
static int write_parts(const format *fmt, const uint8_t *data, size_t size) {
    for (size_t i = 0; i < MAX_FILES && fmt->files[i]; i++) {
        const uint8_t *end = data ? memchr(data, 0x1e, size) : NULL;
        size_t len = end ? (size_t)(end - data) : size;
        if (write_file(fmt->files[i], data, data ? len : 0)) return -1;
        data = end ? end + 1 : NULL;
        size = end ? size - len - 1 : 0;
    }
    return 0;
}

static void check_triplet(const dataset *ds, const dataset_triplet *t) {
    if (t->reference >= ds->n_items || t->target >= ds->n_items || t->n_captions > 2) abort();
    for (size_t c = 0; c < t->n_captions; c++)
        if (!t->captions[c]) abort();
}

static void check_dataset(const dataset *ds) {
    for (size_t i = 0; i < ds->n_items; i++) {
        const dataset_item *it = &ds->items[i];
        if (it->label >= (int32_t)ds->n_labels || (it->label >= 0 && !it->subcategory)) abort();
        if (dataset_find_id(ds, it->id) < 0) abort();
    }
    for (size_t i = 0; i < ds->n_triplets; i++) check_triplet(ds, &ds->triplets[i]);
    for (size_t i = 0; i < ds->n_transactions; i++) {
        const dataset_transaction *tx = &ds->transactions[i];
        if (tx->n_turns < 1 || tx->final_target >= ds->n_items) abort();
        for (size_t t = 0; t < tx->n_turns; t++) check_triplet(ds, &tx->turns[t]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || !scratch_dir()) return 0;
    const format *fmt = &FORMATS[data[0] % N_FORMATS];
    if (write_parts(fmt, data + 1, size - 1)) return 0;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s%s", dir,
             fmt->kind == TRAIN_DATA_CATALOG ? "/catalog.jsonl" : "");
    char triplets[PATH_MAX + 64], transactions[PATH_MAX + 64];
    snprintf(triplets, sizeof triplets, "%s/triplets.jsonl", dir);
    snprintf(transactions, sizeof transactions, "%s/transactions.jsonl", dir);
    train_dataset_config cfg = {.kind = fmt->kind,
                                .path = path,
                                .split = "train",
                                .triplets = triplets,
                                .transactions = transactions,
                                .categories = {"dress"},
                                .n_categories = 1,
                                .limit = (data[0] / N_FORMATS) % 4};
    dataset ds;
    tl_error err;
    if (dataset_open(&cfg, &ds, &err) == TL_OK) {
        check_dataset(&ds);
        dataset_free(&ds);
    } else if (!err.message[0]) {
        abort(); /* every failure names its problem */
    }
    return 0;
}
