/* Fashion-MNIST IDX reader (see fashion_mnist.h). zlib's gzread reads gzip and plain files
 * alike, so both FILE.gz and FILE are accepted. */
#include "fashion_mnist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAX_COUNT    1000000

const char *const FMNIST_CLASS_NAMES[FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

const char *fmnist_split_name(fmnist_split split) {
    return split == FMNIST_TRAIN ? "train" : "t10k";
}

/* Opens dir/NAME.gz, else dir/NAME; *path receives the name tried last. */
static tl_status idx_open(const char *dir, const char *name, gzFile *out, char *path,
                          size_t path_size, tl_error *err) {
    const char *suffixes[] = {".gz", ""};
    for (int i = 0; i < 2; i++) {
        snprintf(path, path_size, "%s/%s%s", dir, name, suffixes[i]);
        if (access(path, R_OK) != 0) continue;
        *out = gzopen(path, "rb");
        if (!*out) return tl_fail(err, TL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return TL_OK;
    }
    return tl_fail(err, TL_ERR_NOT_FOUND,
                   "%s/%s.gz not found: Fashion-MNIST is missing; run deploy/setup.sh (it "
                   "installs the dataset-fashion-mnist package)",
                   dir, name);
}

static tl_status idx_read(gzFile f, const char *path, void *buf, size_t len, tl_error *err) {
    size_t done = 0;
    while (done < len) {
        unsigned chunk = len - done > (1u << 30) ? (1u << 30) : (unsigned)(len - done);
        int n = gzread(f, (uint8_t *)buf + done, chunk);
        if (n <= 0) return tl_fail(err, TL_ERR_FORMAT, "%s: truncated or corrupt data", path);
        done += (size_t)n;
    }
    return TL_OK;
}

/* Reads the big-endian header: magic, then dims[0..n_dims). */
static tl_status idx_read_header(gzFile f, const char *path, uint32_t magic, uint32_t *dims,
                                 int n_dims, tl_error *err) {
    uint8_t raw[16];
    tl_status st = idx_read(f, path, raw, 4 * (size_t)(1 + n_dims), err);
    if (st) return st;
    for (int i = 0; i <= n_dims; i++) {
        uint32_t v = (uint32_t)raw[4 * i] << 24 | (uint32_t)raw[4 * i + 1] << 16 |
                     (uint32_t)raw[4 * i + 2] << 8 | raw[4 * i + 3];
        if (i == 0 && v != magic)
            return tl_fail(err, TL_ERR_FORMAT, "%s: IDX magic %08x, expected %08x", path, v, magic);
        if (i > 0) dims[i - 1] = v;
    }
    if (dims[0] == 0 || dims[0] > IDX_MAX_COUNT)
        return tl_fail(err, TL_ERR_FORMAT, "%s: item count %u out of range", path, dims[0]);
    return TL_OK;
}

/* Reads one IDX file whose header is magic + n_dims dims into a fresh buffer (*data, caller
 * frees); *count receives dims[0]. */
static tl_status idx_load(const char *dir, const char *name, uint32_t magic, int n_dims,
                          uint8_t **data, int *count, tl_error *err) {
    char path[4096];
    gzFile f = NULL;
    tl_status st = idx_open(dir, name, &f, path, sizeof path, err);
    if (st) return st;
    uint32_t dims[3] = {0, 1, 1};
    st = idx_read_header(f, path, magic, dims, n_dims, err);
    if (!st && n_dims == 3 && (dims[1] != FMNIST_SIDE || dims[2] != FMNIST_SIDE))
        st = tl_fail(err, TL_ERR_FORMAT, "%s: images are %ux%u, expected 28x28", path, dims[1],
                     dims[2]);
    size_t len = (size_t)dims[0] * dims[1] * dims[2];
    *data = st ? NULL : malloc(len);
    if (!st && !*data) st = tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", path);
    if (!st) st = idx_read(f, path, *data, len, err);
    gzclose(f);
    if (st) {
        free(*data);
        *data = NULL;
        return st;
    }
    *count = (int)dims[0];
    return TL_OK;
}

static tl_status check_labels(const fmnist_set *set, const char *split, tl_error *err) {
    for (int i = 0; i < set->count; i++)
        if (set->labels[i] >= FMNIST_CLASSES)
            return tl_fail(err, TL_ERR_FORMAT, "%s labels: item %d has label %u", split, i,
                           set->labels[i]);
    return TL_OK;
}

tl_status fmnist_load(const char *dir, fmnist_split split, fmnist_set *out, tl_error *err) {
    memset(out, 0, sizeof *out);
    if (!dir) dir = FMNIST_DEFAULT_DIR;
    const char *prefix = fmnist_split_name(split);
    char images_name[64], labels_name[64];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", prefix);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", prefix);
    int n_images = 0, n_labels = 0;
    tl_status st = idx_load(dir, images_name, IDX_MAGIC_IMAGES, 3, &out->pixels, &n_images, err);
    if (!st) st = idx_load(dir, labels_name, IDX_MAGIC_LABELS, 1, &out->labels, &n_labels, err);
    if (!st && n_images != n_labels)
        st = tl_fail(err, TL_ERR_FORMAT, "%s: %d images but %d labels", prefix, n_images, n_labels);
    out->count = n_images;
    if (!st) st = check_labels(out, prefix, err);
    if (st) fmnist_free(out);
    return st;
}

void fmnist_free(fmnist_set *set) {
    free(set->pixels);
    free(set->labels);
    memset(set, 0, sizeof *set);
}
