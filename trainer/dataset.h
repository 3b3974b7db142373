/* Training and evaluation data in memory, one shape for every format (proto/datasets.md):
 * items (an image with texts and labels), TGIR triplets and multi-turn transactions, all
 * referring to items by index. One loader per format in trainer/dataset_*.c.
 * Not for: batching, augmentation or tokenising (the trainer does those). */
#ifndef TL_TRAINER_DATASET_H
#define TL_TRAINER_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "image.h"
#include "train_config.h"

typedef struct dataset_item {
    int64_t id;      /* catalogue id; fashioniq: index in the item list; fashiongen: row */
    int64_t product; /* items showing one product share it (fashiongen productID); else id */
    char *key;       /* the source's own name for the image (asin, sku), or NULL */
    char *image;     /* image file path; NULL when the pixels are in the data file */
    char **texts;    /* captions or descriptions, most descriptive first */
    size_t n_texts;
    char *title, *category, *subcategory;       /* NULL when the source has none */
    char **attribute_names, **attribute_values; /* values as text */
    size_t n_attributes;
    int32_t label; /* index of subcategory in dataset.labels; -1 when none */
} dataset_item;

/* A composed query: reference image + modification text → target image. Also one turn of a
 * transaction. */
typedef struct dataset_triplet {
    size_t reference, target; /* item indices */
    char *captions[2];        /* FashionIQ has two per pair, the others one */
    size_t n_captions;
} dataset_triplet;

typedef struct dataset_transaction {
    dataset_triplet *turns; /* turn t's target is turn t+1's reference */
    size_t n_turns;
    size_t final_target; /* item index */
} dataset_transaction;

typedef struct dataset_hdf5 dataset_hdf5;

typedef struct dataset {
    char *source; /* the path it was read from, for messages */
    dataset_item *items;
    size_t n_items;
    char **labels; /* distinct subcategories, sorted bytewise; labels of items index it */
    size_t n_labels;
    dataset_triplet *triplets;
    size_t n_triplets;
    dataset_transaction *transactions;
    size_t n_transactions;
    dataset_hdf5 *hdf5; /* fashiongen: the open file the pixels come from */
    size_t *by_id;      /* item indices in id order (dataset_find_id) */
} dataset;

/* Reads the data set cfg describes (kind, path, split, limit, ...). Errors name the file and
 * the line (JSONL), record (JSON lists) or row (HDF5). On success free with dataset_free. */
tl_status dataset_open(const train_dataset_config *cfg, dataset *ds, tl_error *err);

/* The loaders dataset_open dispatches to, one per train_dataset_kind. */
tl_status dataset_load_demo(const train_dataset_config *cfg, dataset *ds, tl_error *err);
tl_status dataset_load_catalog(const train_dataset_config *cfg, dataset *ds, tl_error *err);
tl_status dataset_load_fashioniq(const train_dataset_config *cfg, dataset *ds, tl_error *err);
tl_status dataset_load_fashioniq_multiturn(const train_dataset_config *cfg, dataset *ds,
                                           tl_error *err);
tl_status dataset_load_fashiongen(const train_dataset_config *cfg, dataset *ds, tl_error *err);

/* Decodes item i's image as 8-bit RGB into out (free with img_free). */
tl_status dataset_read_image(const dataset *ds, size_t i, tl_image *out, tl_error *err);
/* The text that goes with an item's image into SCR, in training and in evaluation alike: its
 * title, else its first text, else "" (owned by the item). */
const char *dataset_scr_text(const dataset_item *item);

/* The index of the item with this id, or -1. */
int64_t dataset_find_id(const dataset *ds, int64_t id);

void dataset_free(dataset *ds);

#endif
