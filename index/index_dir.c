/* Manifest writing/reading/verification and atomic publication of index directories.
 * Not for: the gallery or catalogue formats themselves (vector_index.c, catalog_store.c). */
#include "index_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog_store.h"
#include "sha256.h"
#include "vector_index.h"

const char *const INDEX_GALLERY_NAMES[INDEX_N_GALLERIES] = {"xmr_image", "tgir_target", "xmr_text"};

tl_status index_dir_path(char *buf, size_t n, const char *dir, const char *name, tl_error *err) {
    if ((size_t)snprintf(buf, n, "%s/%s", dir, name) >= n)
        return tl_fail(err, TL_ERR_LIMIT, "path too long: %s/%s", dir, name);
    return TL_OK;
}

/* File name of gallery g ("xmr_image.gallery") in buf[64]. */
static void gallery_file(index_gallery g, char buf[64]) {
    snprintf(buf, 64, "%s.gallery", INDEX_GALLERY_NAMES[g]);
}

tl_status index_fsync_path(const char *path, tl_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tl_fail(err, TL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    int rc = fsync(fd);
    close(fd);
    return rc ? tl_fail(err, TL_ERR_IO, "fsync %s: %s", path, strerror(errno)) : TL_OK;
}

/* {"catalog.sqlite": sha, "xmr_image.gallery": sha, ...} for the files of dir. */
static tl_status hash_files(const char *dir, json_t *files, tl_error *err) {
    char name[64], path[4096], hex[65];
    for (int g = -1; g < INDEX_N_GALLERIES; g++) {
        if (g < 0)
            snprintf(name, sizeof name, "%s", INDEX_CATALOG_FILE);
        else
            gallery_file((index_gallery)g, name);
        tl_status st = index_dir_path(path, sizeof path, dir, name, err);
        if (st || (st = sha256_file(path, hex, NULL, err))) return st;
        json_object_set_new(files, name, json_string(hex));
    }
    return TL_OK;
}

static json_t *manifest_json(const index_manifest *m, json_t *files) {
    json_t *counts = json_object();
    json_object_set_new(counts, "products", json_integer(m->n_products));
    for (int g = 0; g < INDEX_N_GALLERIES; g++)
        json_object_set_new(counts, INDEX_GALLERY_NAMES[g], json_integer(m->gallery_counts[g]));
    return json_pack("{s:i, s:s, s:{s:s, s:s}, s:i, s:s, s:o, s:o}", "format_version",
                     m->format_version, "created", m->created, "model", "checksum",
                     m->model_checksum, "capabilities", m->capabilities, "dim", m->dim, "factory",
                     m->factory, "counts", counts, "files", files);
}

tl_status index_manifest_write(const char *dir, index_manifest *m, tl_error *err) {
    if (!m->created[0]) {
        time_t now = time(NULL);
        strftime(m->created, sizeof m->created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    }
    m->format_version = INDEX_FORMAT_VERSION;
    char path[4096];
    json_t *files = json_object();
    tl_status st = hash_files(dir, files, err);
    if (st) {
        json_decref(files);
        return st;
    }
    json_t *root = manifest_json(m, files);
    if ((st = index_dir_path(path, sizeof path, dir, INDEX_MANIFEST_FILE, err))) {
        json_decref(root);
        return st;
    }
    int rc = root ? json_dump_file(root, path, JSON_INDENT(2) | JSON_SORT_KEYS) : -1;
    json_decref(root);
    if (rc) return tl_fail(err, TL_ERR_IO, "cannot write %s", path);
    return index_fsync_path(path, err);
}

static tl_status load_manifest_json(const char *dir, json_t **out, tl_error *err) {
    char path[4096];
    json_error_t jerr;
    tl_status st = index_dir_path(path, sizeof path, dir, INDEX_MANIFEST_FILE, err);
    if (st) return st;
    if (!(*out = json_load_file(path, 0, &jerr)))
        return tl_fail(err, access(path, F_OK) ? TL_ERR_IO : TL_ERR_FORMAT, "%s: %s", path,
                       jerr.text);
    return TL_OK;
}

static int copy_string(json_t *v, char *buf, size_t n) {
    if (!json_is_string(v) || strlen(json_string_value(v)) >= n) return 0;
    memcpy(buf, json_string_value(v), strlen(json_string_value(v)) + 1);
    return 1;
}

static tl_status parse_manifest(json_t *root, index_manifest *m, tl_error *err) {
    json_t *model = json_object_get(root, "model"), *counts = json_object_get(root, "counts");
    *m = (index_manifest){0};
    int ok = json_is_object(model) && json_is_object(counts) &&
             copy_string(json_object_get(root, "created"), m->created, sizeof m->created) &&
             copy_string(json_object_get(root, "factory"), m->factory, sizeof m->factory) &&
             copy_string(json_object_get(model, "checksum"), m->model_checksum,
                         sizeof m->model_checksum) &&
             copy_string(json_object_get(model, "capabilities"), m->capabilities,
                         sizeof m->capabilities) &&
             json_is_integer(json_object_get(counts, "products"));
    m->format_version = (int)json_integer_value(json_object_get(root, "format_version"));
    m->dim = (int)json_integer_value(json_object_get(root, "dim"));
    m->n_products = json_integer_value(json_object_get(counts, "products"));
    for (int g = 0; g < INDEX_N_GALLERIES && ok; g++) {
        json_t *c = json_object_get(counts, INDEX_GALLERY_NAMES[g]);
        ok = json_is_integer(c);
        m->gallery_counts[g] = json_integer_value(c);
    }
    if (!ok || m->dim <= 0) return tl_fail(err, TL_ERR_FORMAT, "manifest lacks a field");
    if (m->format_version != INDEX_FORMAT_VERSION)
        return tl_fail(err, TL_ERR_UNSUPPORTED, "manifest format %d, this build reads %d",
                       m->format_version, INDEX_FORMAT_VERSION);
    return TL_OK;
}

tl_status index_manifest_read(const char *dir, index_manifest *m, tl_error *err) {
    json_t *root;
    tl_status st = load_manifest_json(dir, &root, err);
    if (st) return st;
    st = parse_manifest(root, m, err);
    json_decref(root);
    return st ? tl_error_prefix(err, "%s/%s", dir, INDEX_MANIFEST_FILE) : TL_OK;
}

static tl_status verify_checksums(const char *dir, json_t *listed, tl_error *err) {
    json_t *actual = json_object();
    tl_status st = hash_files(dir, actual, err);
    const char *name;
    json_t *want;
    json_object_foreach(listed, name, want) {
        json_t *got = json_object_get(actual, name);
        if (!st && (!got || !json_equal(got, want)))
            st = tl_fail(err, TL_ERR_FORMAT, "%s/%s: SHA-256 differs from the manifest", dir, name);
    }
    if (!st && json_object_size(listed) != json_object_size(actual))
        st = tl_fail(err, TL_ERR_FORMAT, "%s: manifest does not list every file", dir);
    json_decref(actual);
    return st;
}

static tl_status verify_counts(const char *dir, const index_manifest *m, tl_error *err) {
    char path[4096], name[64];
    catalog_store *s;
    int64_t n;
    tl_status st = index_dir_path(path, sizeof path, dir, INDEX_CATALOG_FILE, err);
    if (st || (st = catalog_store_open(&s, path, CATALOG_READ_ONLY, err))) return st;
    st = catalog_count(s, &n, err);
    catalog_store_close(s);
    if (!st && n != m->n_products)
        st = tl_fail(err, TL_ERR_FORMAT, "catalogue holds %lld products, manifest says %lld",
                     (long long)n, (long long)m->n_products);
    for (int g = 0; g < INDEX_N_GALLERIES && !st; g++) {
        vector_index *ix;
        gallery_file((index_gallery)g, name);
        if ((st = index_dir_path(path, sizeof path, dir, name, err)) ||
            (st = vector_index_load(&ix, path, VECTOR_INDEX_READ_ONLY, 1, err)))
            break;
        int64_t count = vector_index_count(ix);
        int dim = vector_index_dim(ix);
        vector_index_free(ix);
        if (count != m->gallery_counts[g] || dim != m->dim)
            st = tl_fail(err, TL_ERR_FORMAT, "%s: %lld vectors of dim %d, manifest says %lld of %d",
                         name, (long long)count, dim, (long long)m->gallery_counts[g], m->dim);
    }
    return st;
}

tl_status index_dir_verify(const char *dir, index_manifest *out, tl_error *err) {
    json_t *root;
    index_manifest m;
    tl_status st = load_manifest_json(dir, &root, err);
    if (st) return st;
    if (!(st = parse_manifest(root, &m, err))) {
        json_t *files = json_object_get(root, "files");
        st = json_is_object(files) ? verify_checksums(dir, files, err)
                                   : tl_fail(err, TL_ERR_FORMAT, "manifest lacks files");
    }
    json_decref(root);
    if (!st) st = verify_counts(dir, &m, err);
    if (!st && out) *out = m;
    return st;
}

tl_status index_model_checksum(const char *model_dir, char hex[65], tl_error *err) {
    char config[4096], weights[4096], ignored[65];
    sha256_ctx c;
    uint8_t digest[32];
    sha256_init(&c);
    tl_status st = index_dir_path(config, sizeof config, model_dir, "config.json", err);
    if (!st) st = index_dir_path(weights, sizeof weights, model_dir, "model.safetensors", err);
    if (!st && access(weights, F_OK) != 0)
        st =
            index_dir_path(weights, sizeof weights, model_dir, "model.safetensors.index.json", err);
    if (!st) st = sha256_file(config, ignored, &c, err);
    if (!st) st = sha256_file(weights, ignored, &c, err);
    sha256_final(&c, digest);
    sha256_hex(digest, hex);
    return st;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    return remove(path);
}

tl_status index_dir_remove(const char *dir, tl_error *err) {
    if (access(dir, F_OK) != 0) return TL_OK;
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS))
        return tl_fail(err, TL_ERR_IO, "cannot remove %s: %s", dir, strerror(errno));
    return TL_OK;
}

static tl_status fsync_dir_entries(const char *dir, tl_error *err) {
    DIR *d = opendir(dir);
    if (!d) return tl_fail(err, TL_ERR_IO, "cannot open %s: %s", dir, strerror(errno));
    struct dirent *e;
    char path[4096];
    tl_status st = TL_OK;
    while (!st && (e = readdir(d)))
        if (e->d_name[0] != '.' && !(st = index_dir_path(path, sizeof path, dir, e->d_name, err)))
            st = index_fsync_path(path, err);
    closedir(d);
    return st ? st : index_fsync_path(dir, err);
}

tl_status index_dir_publish(const char *tmp, const char *out, tl_error *err) {
    tl_status st = fsync_dir_entries(tmp, err);
    if (st) return st;
    int exists = access(out, F_OK) == 0;
    if (exists ? renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_EXCHANGE) : rename(tmp, out))
        return tl_fail(err, TL_ERR_IO, "cannot move %s to %s: %s", tmp, out, strerror(errno));
    char *copy = strdup(out);
    if (!copy) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    st = index_fsync_path(dirname(copy), err);
    free(copy);
    /* After the exchange, tmp names the previous index. */
    if (!st && exists) st = index_dir_remove(tmp, err);
    return st;
}
