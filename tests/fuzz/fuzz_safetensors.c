/* libFuzzer target for the safetensors reader: validates arbitrary bytes with st_open_memory,
 * then reads every small tensor through st_to_f64 and st_get_f32 so that any validated
 * offset or size that lies shows up as an out-of-bounds read under ASan. */
#include <stdint.h>
#include <stdlib.h>

#include "safetensors.h"

#define MAX_TOUCHED_ELEMENTS 4096

static void touch_tensor(st_file *f, const st_tensor *t) {
    int64_t n = st_numel(t);
    if (n > MAX_TOUCHED_ELEMENTS) return;
    double *values = malloc((size_t)(n > 0 ? n : 1) * sizeof *values);
    if (!values) return;
    st_to_f64(t, values);
    free(values);
    const float *f32;
    tl_error err;
    st_get_f32(f, t->name, t->ndim, t->shape, &f32, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file *f = NULL;
    tl_error err;
    if (st_open_memory(&f, data, size, &err) != TL_OK) return 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (st_find(f, t->name) != t) abort(); /* the name index must agree with the list */
        touch_tensor(f, t);
    }
    st_close(f);
    return 0;
}
