/* Index directories: the immutable unit the server loads. One directory holds the SQLite
 * catalogue, one gallery file per gallery and manifest.json (format version, model checksum and
 * capabilities, dim, counts, factory string, creation time, SHA-256 of every file). Once
 * published a directory is never modified; a rebuild publishes a new one in its place.
 * Not for: building the contents (index_build.h). */
#ifndef TL_INDEX_DIR_H
#define TL_INDEX_DIR_H

#include <stdint.h>

#include "error.h"

#define INDEX_FORMAT_VERSION 1
#define INDEX_CATALOG_FILE   "catalog.sqlite"
#define INDEX_MANIFEST_FILE  "manifest.json"

/* The galleries. Until the task adapters land, all hold plain CLIP embeddings: image
 * embeddings for xmr_image and tgir_target, text embeddings of title + description for
 * xmr_text. */
typedef enum index_gallery {
    GALLERY_XMR_IMAGE,   /* text->image and image->image */
    GALLERY_TGIR_TARGET, /* composed / multi-turn queries */
    GALLERY_XMR_TEXT,    /* image->text */
    INDEX_N_GALLERIES
} index_gallery;

extern const char *const INDEX_GALLERY_NAMES[INDEX_N_GALLERIES]; /* "xmr_image", ... */

typedef struct index_manifest {
    int format_version;
    char created[32];        /* UTC, ISO 8601 */
    char model_checksum[65]; /* SHA-256 over config.json then model.safetensors */
    char capabilities[128];  /* comma-separated, e.g. "clip-image,clip-text" */
    int dim;
    char factory[128];
    int64_t n_products;
    int64_t gallery_counts[INDEX_N_GALLERIES];
} index_manifest;

/* dir/name into buf of size n; TL_ERR_LIMIT when it does not fit. */
tl_status index_dir_path(char *buf, size_t n, const char *dir, const char *name, tl_error *err);

/* Writes dir/manifest.json for m, with the SHA-256 of the catalogue and every gallery file,
 * and fsyncs it. created is filled in when empty. */
tl_status index_manifest_write(const char *dir, index_manifest *m, tl_error *err);

/* Reads dir/manifest.json (checksums are not checked; see index_dir_verify). */
tl_status index_manifest_read(const char *dir, index_manifest *m, tl_error *err);

/* Checks every file's SHA-256 against the manifest, that no listed file is missing, and that the
 * catalogue's and each gallery's counts match it. Fills *m (may be NULL). */
tl_status index_dir_verify(const char *dir, index_manifest *m, tl_error *err);

/* SHA-256 of a model checkpoint directory: config.json then model.safetensors (or, when that
 * is absent, model.safetensors.index.json). */
tl_status index_model_checksum(const char *model_dir, char hex[65], tl_error *err);

/* Publishes the finished directory tmp as out: fsyncs every file in tmp and tmp itself, then
 * renames it into place (an existing out is swapped atomically with renameat2(RENAME_EXCHANGE)
 * and the old one removed), and fsyncs the parent directory. */
tl_status index_dir_publish(const char *tmp, const char *out, tl_error *err);

/* Removes a directory tree (no error if it does not exist). */
tl_status index_dir_remove(const char *dir, tl_error *err);

/* fsync of a file or directory by path. */
tl_status index_fsync_path(const char *path, tl_error *err);

#endif
