/* refcheck helpers that more than one folder kind uses: recognising a folder by the tensors
 * of one of its files, comparing a result with a reference tensor by name.
 * Not for: TAP output and tensor loading (refcheck.c) or any kind's own checks. */
#include <stdio.h>
#include <stdlib.h>

#include "refcheck.h"

int rc_file_has_tensors(const char *dir, const char *file, const char *name_a, const char *name_b) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    st_file *f;
    if (st_open(&f, path, NULL)) return 0;
    int has = st_find(f, name_a) && st_find(f, name_b);
    st_close(f);
    return has;
}

int rc_compare_tensor(refcheck *rc, st_file *f, const char *name, const char *label,
                      const float *got, size_t n, double tol) {
    size_t count = 0;
    float *want = rc_tensor_f32(f, name, &count);
    int pass;
    if (want && count != n)
        pass = rc_case(rc, 0, "%s: %zu values, reference has %zu", label, n, count);
    else
        pass = rc_compare(rc, label, got, want, n, tol);
    free(want);
    return pass;
}
