/* FashionGen's HDF5 files (proto/datasets.md): one item per row, texts converted from
 * latin-1 to UTF-8, pixels read row by row from the open file on demand (the train file holds
 * 12 GB of them). Not for: concurrent image reads (serial libhdf5 is not thread-safe). */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

struct dataset_hdf5 {
    hid_t file, images;
    hsize_t height, width;
    char *path;
};

/* A latin-1 byte string of at most len bytes (stops at NUL; trailing spaces dropped) as UTF-8,
 * malloc'ed. */
static char *latin1_to_utf8(const unsigned char *s, size_t len) {
    size_t n = strnlen((const char *)s, len);
    while (n && s[n - 1] == ' ') n--;
    char *out = malloc(2 * n + 1), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            *p++ = (char)s[i];
        } else {
            *p++ = (char)(0xC0 | (s[i] >> 6));
            *p++ = (char)(0x80 | (s[i] & 0x3F));
        }
    }
    *p = '\0';
    return out;
}

/* Opens name and checks it holds rows × [1] (or just rows) values; *rows gets the count. */
static tl_status open_column(struct dataset_hdf5 *h, const char *name, hid_t *dset, hsize_t *rows,
                             tl_error *err) {
    *dset = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (*dset < 0) return tl_fail(err, TL_ERR_FORMAT, "%s: no dataset \"%s\"", h->path, name);
    hid_t space = H5Dget_space(*dset);
    hsize_t dims[2] = {0, 0};
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank >= 1 && rank <= 2) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    if (rank < 1 || rank > 2 || (rank == 2 && dims[1] != 1)) {
        H5Dclose(*dset);
        return tl_fail(err, TL_ERR_FORMAT, "%s: \"%s\" must hold one value per row", h->path, name);
    }
    *rows = dims[0];
    return TL_OK;
}

/* Reads all rows of column name (at least n) with its own type into a malloc'ed buffer;
 * checks its class. *size gets the bytes per row. */
static tl_status read_column(struct dataset_hdf5 *h, const char *name, H5T_class_t want, size_t n,
                             void **data, size_t *size, tl_error *err) {
    hid_t dset;
    hsize_t rows = 0;
    *data = NULL;
    tl_status st = open_column(h, name, &dset, &rows, err);
    if (st) return st;
    hid_t type = H5Dget_type(dset);
    *size = H5Tget_size(type);
    if (H5Tget_class(type) != want || (want == H5T_STRING && H5Tis_variable_str(type)))
        st = tl_fail(err, TL_ERR_FORMAT, "%s: \"%s\" must hold %s", h->path, name,
                     want == H5T_STRING ? "fixed-length strings" : "integers");
    else if (rows < n)
        st = tl_fail(err, TL_ERR_FORMAT, "%s: \"%s\" has %llu rows, input_image has %zu", h->path,
                     name, (unsigned long long)rows, n);
    else if (!(*data = malloc(rows * (want == H5T_STRING ? *size : sizeof(int64_t)) + 1)))
        st = tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", h->path);
    else if (H5Dread(dset, want == H5T_STRING ? type : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                     H5P_DEFAULT, *data) < 0)
        st = tl_fail(err, TL_ERR_IO, "%s: cannot read \"%s\"", h->path, name);
    H5Tclose(type);
    H5Dclose(dset);
    if (st) free(*data), *data = NULL;
    return st;
}

/* Reads the first n rows of a string column into out[row] (UTF-8, malloc'ed). */
static tl_status read_strings(struct dataset_hdf5 *h, const char *name, size_t n, char **out,
                              tl_error *err) {
    void *raw;
    size_t size;
    tl_status st = read_column(h, name, H5T_STRING, n, &raw, &size, err);
    for (size_t i = 0; !st && i < n; i++)
        if (!(out[i] = latin1_to_utf8((unsigned char *)raw + i * size, size)))
            st = tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", h->path);
    free(raw);
    return st;
}

static tl_status read_product_ids(struct dataset_hdf5 *h, size_t n, int64_t *out, tl_error *err) {
    void *all;
    size_t size;
    tl_status st = read_column(h, "input_productID", H5T_INTEGER, n, &all, &size, err);
    if (!st) memcpy(out, all, n * sizeof *out);
    free(all);
    return st;
}

/* Opens the file and input_image (rows × H × W × 3, uint8); *rows gets the count. */
static tl_status open_images(struct dataset_hdf5 *h, hsize_t *rows, tl_error *err) {
    h->file = H5Fopen(h->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h->file < 0) return tl_fail(err, TL_ERR_IO, "%s: cannot open as HDF5", h->path);
    h->images = H5Dopen2(h->file, "input_image", H5P_DEFAULT);
    if (h->images < 0)
        return tl_fail(err, TL_ERR_FORMAT, "%s: no dataset \"input_image\"", h->path);
    hid_t space = H5Dget_space(h->images), type = H5Dget_type(h->images);
    hsize_t dims[4] = {0};
    int ok = H5Sget_simple_extent_ndims(space) == 4 && H5Tget_class(type) == H5T_INTEGER &&
             H5Tget_size(type) == 1;
    if (ok) H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    H5Tclose(type);
    if (!ok || dims[3] != 3 || !dims[1] || !dims[2] || dims[1] > 65536 || dims[2] > 65536)
        return tl_fail(err, TL_ERR_FORMAT, "%s: \"input_image\" must be rows × H × W × 3 uint8",
                       h->path);
    *rows = dims[0], h->height = dims[1], h->width = dims[2];
    return TL_OK;
}

void ds_hdf5_close(dataset_hdf5 *h) {
    if (h->images > 0) H5Dclose(h->images);
    if (h->file > 0) H5Fclose(h->file);
    free(h->path);
    free(h);
}

tl_status ds_hdf5_read_image(dataset_hdf5 *h, size_t row, tl_image *out, tl_error *err) {
    size_t bytes = (size_t)(h->height * h->width * 3);
    out->rgb = malloc(bytes);
    if (!out->rgb) return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", h->path);
    hsize_t start[4] = {row, 0, 0, 0}, count[4] = {1, h->height, h->width, 3};
    hid_t file_space = H5Dget_space(h->images), mem_space = H5Screate_simple(4, count, NULL);
    herr_t rc = H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0)
        rc = H5Dread(h->images, H5T_NATIVE_UCHAR, mem_space, file_space, H5P_DEFAULT, out->rgb);
    H5Sclose(mem_space);
    H5Sclose(file_space);
    if (rc < 0) {
        img_free(out);
        return tl_fail(err, TL_ERR_IO, "%s: row %zu: cannot read input_image", h->path, row);
    }
    out->width = (int)h->width, out->height = (int)h->height;
    return TL_OK;
}

typedef struct fashiongen_columns {
    char **description, **name, **category, **subcategory;
    int64_t *product;
} fashiongen_columns;

static tl_status read_columns(struct dataset_hdf5 *h, size_t n, fashiongen_columns *c,
                              tl_error *err) {
    c->description = calloc(n + 1, sizeof(char *));
    c->name = calloc(n + 1, sizeof(char *));
    c->category = calloc(n + 1, sizeof(char *));
    c->subcategory = calloc(n + 1, sizeof(char *));
    c->product = calloc(n + 1, sizeof(int64_t));
    if (!c->description || !c->name || !c->category || !c->subcategory || !c->product)
        return tl_fail(err, TL_ERR_NOMEM, "%s: out of memory", h->path);
    tl_status st = read_strings(h, "input_description", n, c->description, err);
    if (!st) st = read_strings(h, "input_name", n, c->name, err);
    if (!st) st = read_strings(h, "input_category", n, c->category, err);
    if (!st) st = read_strings(h, "input_subcategory", n, c->subcategory, err);
    if (!st) st = read_product_ids(h, n, c->product, err);
    return st;
}

/* Moves row's strings from the columns into a new item (the columns keep NULLs). */
static tl_status add_row(dataset *ds, size_t *cap, fashiongen_columns *c, size_t row,
                         tl_error *err) {
    dataset_item *item = ds_add_item(ds, cap, (int64_t)row);
    if (!item) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    item->product = c->product[row];
    item->title = c->name[row], c->name[row] = NULL;
    item->category = c->category[row], c->category[row] = NULL;
    item->subcategory = c->subcategory[row], c->subcategory[row] = NULL;
    if (c->description[row][0]) {
        item->texts = calloc(1, sizeof(char *));
        if (!item->texts) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
        item->texts[0] = c->description[row], c->description[row] = NULL, item->n_texts = 1;
    }
    return TL_OK;
}

static void free_columns(fashiongen_columns *c, size_t n) {
    char **columns[4] = {c->description, c->name, c->category, c->subcategory};
    for (int k = 0; k < 4; k++) {
        for (size_t i = 0; columns[k] && i < n; i++) free(columns[k][i]);
        free(columns[k]);
    }
    free(c->product);
}

tl_status dataset_load_fashiongen(const train_dataset_config *cfg, dataset *ds, tl_error *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors come back as our messages, not on stderr */
    ds->source = strdup(cfg->path);
    ds->hdf5 = calloc(1, sizeof *ds->hdf5);
    if (!ds->source || !ds->hdf5 || !(ds->hdf5->path = strdup(cfg->path)))
        return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    ds->hdf5->file = ds->hdf5->images = -1;
    hsize_t rows = 0;
    tl_status st = open_images(ds->hdf5, &rows, err);
    if (st) return st;
    size_t n = cfg->limit && (hsize_t)cfg->limit < rows ? (size_t)cfg->limit : (size_t)rows;
    if (n == 0) return tl_fail(err, TL_ERR_FORMAT, "%s: no rows", cfg->path);
    fashiongen_columns columns = {0};
    size_t cap = 0;
    st = read_columns(ds->hdf5, n, &columns, err);
    for (size_t row = 0; row < n && !st; row++) st = add_row(ds, &cap, &columns, row, err);
    free_columns(&columns, n);
    return st ? st : ds_finish(ds, err);
}
