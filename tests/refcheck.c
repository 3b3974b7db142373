/* `refcheck DIR`: checks the engine against a folder of reference vectors and prints TAP.
 * This file holds the shared helpers and the dispatch on what the folder contains; the checks
 * of each folder kind live in refcheck_KIND.c. */
#include "refcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tailor_model.h"

typedef struct folder_kind {
    const char *name;
    int (*detect)(const char *dir);
    void (*run)(refcheck *rc, const char *dir);
} folder_kind;

/* First match wins: list more specific kinds first. */
static const folder_kind kinds[] = {
    {"tailor", refcheck_tailor_detect, refcheck_tailor_run},
    {"clip", refcheck_clip_detect, refcheck_clip_run},
};

int rc_case(refcheck *rc, int pass, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rc->count++;
    if (!pass) rc->failed++;
    printf("%s %d - ", pass ? "ok" : "not ok", rc->count);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    return pass;
}

int rc_compare(refcheck *rc, const char *name, const float *got, const float *want, size_t n,
               double tol) {
    double worst = 0;
    size_t at = 0;
    int bad = !got || !want;
    for (size_t i = 0; !bad && i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= worst)) { /* NaN counts as worst */
            worst = d;
            at = i;
            if (isnan(d)) break;
        }
    }
    int pass = !bad && worst <= tol;
    if (!pass && !bad)
        printf("# %s: max |diff| %.3g > %.3g at %zu (got %.9g, want %.9g)\n", name, worst, tol, at,
               got[at], want[at]);
    return rc_case(rc, pass, "%s (max |diff| %.3g, tol %.3g)", name, worst, tol);
}

static const st_tensor *find_tensor(st_file *f, const char *name, size_t *count) {
    const st_tensor *t = f ? st_find(f, name) : NULL;
    if (!t) printf("# reference tensor %s is missing\n", name);
    if (t && count) *count = (size_t)st_numel(t);
    return t;
}

float *rc_tensor_f32(st_file *f, const char *name, size_t *count) {
    const st_tensor *t = find_tensor(f, name, count);
    float *out = t ? malloc(((size_t)st_numel(t) + 1) * sizeof *out) : NULL;
    if (out) st_to_f32(t, out);
    return out;
}

int64_t *rc_tensor_i64(st_file *f, const char *name, size_t *count) {
    const st_tensor *t = find_tensor(f, name, count);
    int64_t *out = t ? malloc(((size_t)st_numel(t) + 1) * sizeof *out) : NULL;
    if (out) st_to_i64(t, out);
    return out;
}

json_t *rc_load_json(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) printf("# %s: %s\n", path, je.text);
    return j;
}

double rc_json_number(const json_t *root, double fallback, ...) {
    va_list ap;
    va_start(ap, fallback);
    const json_t *v = root;
    for (const char *key; v && (key = va_arg(ap, const char *));) v = json_object_get(v, key);
    va_end(ap);
    return json_is_number(v) ? json_number_value(v) : fallback;
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--help")) {
        printf("usage: refcheck DIR\nChecks the engine against the reference vectors in DIR "
               "and prints TAP.\n");
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--version")) {
        printf("refcheck %s\n", TAILOR_VERSION);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: refcheck DIR\n");
        return 2;
    }
    refcheck rc = {0, 0};
    const folder_kind *kind = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds && !kind; i++)
        if (kinds[i].detect(argv[1])) kind = &kinds[i];
    if (!kind)
        rc_case(&rc, 0, "%s holds no known kind of reference vectors", argv[1]);
    else {
        printf("# %s: %s reference vectors\n", argv[1], kind->name);
        kind->run(&rc, argv[1]);
    }
    printf("1..%d\n", rc.count);
    return rc.failed ? 1 : 0;
}
