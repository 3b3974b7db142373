/* Shared helpers of the unit tests (see test_util.h).
 * Not for: library code; failures here are reported to the test, never aborted on. */
#include "test_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tu_make_temp_dir(char *dir, size_t size, const char *name) {
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (n < 0 || (size_t)n >= size || !mkdtemp(dir)) {
        if (size) dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
    return remove(path);
}

void tu_remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int bad = fputs(text, f) < 0;
    return fclose(f) || bad ? -1 : 0;
}

int tu_copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    char buf[1 << 16];
    size_t got;
    int ok = in && out;
    while (ok && (got = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, got, out) == got;
    ok = ok && !ferror(in);
    if (out && fclose(out)) ok = 0;
    if (in) fclose(in);
    return ok ? 0 : -1;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long size = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    rewind(f);
    char *buf = size < 0 ? NULL : malloc((size_t)size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)size, f) : 0;
    if (buf) buf[got] = '\0';
    if (len) *len = got;
    fclose(f);
    return buf;
}

tl_model *tu_open_model(const char *dir) {
    tl_model *m = NULL;
    tl_error err;
    if (tl_model_open(&m, dir, NULL, &err)) printf("# %s: %s\n", dir, err.message);
    return m;
}

/* t with the edit's shrink applied when it names t. */
static st_tensor edited(const st_tensor *t, const tu_tensor_edit *edit) {
    if (edit->replace && !strcmp(t->name, edit->replace->name)) return *edit->replace;
    st_tensor out = *t;
    if (edit->shrink && !strcmp(t->name, edit->shrink)) {
        out.shape[t->ndim - 1]--;
        out.nbytes = (size_t)st_numel(&out) * st_dtype_size(t->dtype);
    }
    return out;
}

/* Writes path: src's tensors with edit applied. */
static tl_status write_edited(const char *path, const st_file *src, const tu_tensor_edit *edit,
                              tl_error *err) {
    size_t n = st_count(src), kept = 0;
    st_tensor *list = calloc(n + edit->n_extra + 1, sizeof *list);
    if (!list) return tl_fail(err, TL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const st_tensor *t = st_at(src, i);
        if ((edit->drop && edit->drop(t->name)) ||
            (edit->drop_name && !strcmp(t->name, edit->drop_name)))
            continue;
        list[kept++] = edited(t, edit);
    }
    for (size_t i = 0; i < edit->n_extra; i++) list[kept++] = edit->extra[i];
    tl_status st = st_write(path, list, kept, NULL, err);
    free(list);
    return st;
}

tl_status tu_write_variant(const char *dir, const char *src_dir, const tu_tensor_edit *edit) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st_file *src = NULL;
    tl_error err = {0};
    tl_status st = st_open_dir(&src, src_dir, &err);
    if (!st) st = write_edited(path, src, edit, &err);
    if (st) printf("# checkpoint variant %s: %s\n", path, err.message);
    st_close(src);
    return st;
}
