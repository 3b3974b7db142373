/* Helpers that several unit tests share: temporary directories, whole-file reads and writes,
 * opening a checkpoint, checkpoint variants (a model.safetensors with tensors dropped, shrunk,
 * replaced or added). Not for: assertions (harness.h) or anything a test checks itself. */
#ifndef TL_TEST_UTIL_H
#define TL_TEST_UTIL_H

#include <stddef.h>

#include "safetensors.h"
#include "tailor_model.h"

/* Creates a fresh directory $TMPDIR/NAME.XXXXXX (/tmp without TMPDIR) and writes its path
 * into dir[size]. Returns 0, or -1 with dir[0] = 0. Remove it with tu_remove_tree. */
int tu_make_temp_dir(char *dir, size_t size, const char *name);

/* Removes path and everything below it; links are removed, not followed. */
void tu_remove_tree(const char *path);

/* Writes text to path (created or truncated). Returns 0, or -1 when it cannot. */
int tu_write_text(const char *path, const char *text);

/* Copies the file src to dst byte for byte (dst is not created when src cannot be opened).
 * Returns 0, or -1 when it cannot. */
int tu_copy_file(const char *src, const char *dst);

/* The whole file at path, NUL-terminated (malloc'd; caller frees), its length in *len (may be
 * NULL). NULL when it cannot be read. */
char *tu_read_file(const char *path, size_t *len);

/* Opens the checkpoint in dir with default options (caller closes with tl_model_close); NULL
 * after printing why as a TAP comment. */
tl_model *tu_open_model(const char *dir);

/* How tu_write_variant changes a checkpoint's tensors; zero fields change nothing. */
typedef struct tu_tensor_edit {
    int (*drop)(const char *name); /* leaves out the tensors it selects */
    const char *drop_name;         /* leaves out this tensor */
    const char *shrink;            /* this tensor one element shorter in its last dimension */
    const st_tensor *replace;      /* put in place of the tensor of the same name */
    const st_tensor *extra;        /* appended */
    size_t n_extra;
} tu_tensor_edit;

/* Writes DIR/model.safetensors: the tensors of the checkpoint in src_dir with edit applied.
 * Returns the status; a failure is printed as a TAP comment. */
tl_status tu_write_variant(const char *dir, const char *src_dir, const tu_tensor_edit *edit);

#endif
