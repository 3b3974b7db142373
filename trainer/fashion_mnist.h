/* Reads Fashion-MNIST as Debian's dataset-fashion-mnist package ships it: IDX image and label
 * files, gzip-compressed (uncompressed copies are read too), 28x28 8-bit grey, classes 0..9.
 * Not for: other IDX layouts or writing IDX. */
#ifndef TL_TRAINER_FASHION_MNIST_H
#define TL_TRAINER_FASHION_MNIST_H

#include <stdint.h>

#include "error.h"

#define FMNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_SIDE        28
#define FMNIST_PIXELS      (FMNIST_SIDE * FMNIST_SIDE)
#define FMNIST_CLASSES     10

typedef enum fmnist_split { FMNIST_TRAIN, FMNIST_T10K } fmnist_split;

typedef struct fmnist_set {
    int count;
    uint8_t *pixels; /* [count, 28, 28], owned (fmnist_free) */
    uint8_t *labels; /* [count], each 0..9, owned */
} fmnist_set;

/* File name prefix of a split: "train" or "t10k". */
const char *fmnist_split_name(fmnist_split split);

/* Fashion-MNIST's own class names, index = label ("T-shirt/top", ..., "Ankle boot"). */
extern const char *const FMNIST_CLASS_NAMES[FMNIST_CLASSES];

/* Loads one split's images and labels from dir (NULL = FMNIST_DEFAULT_DIR) into *out, which
 * the caller frees with fmnist_free. Missing files are TL_ERR_NOT_FOUND with a message
 * naming the file and the package; bad headers, counts or labels are TL_ERR_FORMAT. */
tl_status fmnist_load(const char *dir, fmnist_split split, fmnist_set *out, tl_error *err);

void fmnist_free(fmnist_set *set);

#endif
