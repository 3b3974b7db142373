/* Pillow's BICUBIC resize of 8-bit RGB, bit for bit (testdata README section 4): separable,
 * horizontal pass first, 8-bit intermediate, antialiased support when shrinking, 22-bit
 * fixed-point coefficients. Not for: other filters, or float images. */
#include "image_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Pillow computes the filter without fused multiply-adds; contracting a*b+c into one FMA
 * (GCC's default under -march=native) can move a coefficient by one fixed-point step. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define COEFF_BITS 22 /* Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2 */
#define CUBIC_A    (-0.5)

/* Fixed-point filter taps of one axis, for the output indices of a window. */
typedef struct resize_axis {
    int ksize;  /* stride between the taps of consecutive outputs */
    int *first; /* [n] first input index read */
    int *count; /* [n] number of input indices read */
    int32_t *k; /* [n][ksize] coefficients, scaled by 2^COEFF_BITS */
} resize_axis;

static double cubic(double x) {
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * CUBIC_A;
    return 0.0;
}

static int32_t fixed_coeff(double w) {
    return (int32_t)(w < 0 ? -0.5 + w * (1 << COEFF_BITS) : 0.5 + w * (1 << COEFF_BITS));
}

/* Taps of output index i; w is scratch for count doubles. */
static void axis_taps(int in_size, double scale, double support, int i, double *w, int *first,
                      int *count, int32_t *k) {
    double filterscale = scale < 1.0 ? 1.0 : scale, inv = 1.0 / filterscale;
    double center = (i + 0.5) * scale, sum = 0.0;
    int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in_size) hi = in_size;
    int n = hi - lo > 0 ? hi - lo : 0;
    for (int j = 0; j < n; j++) {
        w[j] = cubic((j + lo - center + 0.5) * inv);
        sum += w[j];
    }
    for (int j = 0; j < n; j++) k[j] = fixed_coeff(sum != 0.0 ? w[j] / sum : w[j]);
    *first = lo;
    *count = n;
}

static void axis_free(resize_axis *a) {
    free(a->first);
    free(a->count);
    free(a->k);
    *a = (resize_axis){0};
}

/* Taps for outputs [first, first+n) of a resize from in_size to out_size. */
static tl_status axis_init(int in_size, int out_size, int first, int n, resize_axis *a,
                           tl_error *err) {
    double scale = (double)in_size / out_size;
    double support = 2.0 * (scale < 1.0 ? 1.0 : scale);
    double taps = ceil(support) * 2 + 1;
    a->ksize = taps < in_size ? (int)taps : in_size;
    size_t nk;
    double *w = malloc((size_t)a->ksize * sizeof *w);
    a->first = malloc((size_t)n * sizeof *a->first);
    a->count = malloc((size_t)n * sizeof *a->count);
    a->k =
        __builtin_mul_overflow((size_t)n, (size_t)a->ksize, &nk) ? NULL : malloc(nk * sizeof *a->k);
    if (!w || !a->first || !a->count || !a->k) {
        free(w);
        axis_free(a);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory for %d resize coefficients", n);
    }
    for (int i = 0; i < n; i++)
        axis_taps(in_size, scale, support, first + i, w, &a->first[i], &a->count[i],
                  a->k + (size_t)i * a->ksize);
    free(w);
    return TL_OK;
}

static uint8_t clip8(int32_t acc) {
    acc >>= COEFF_BITS;
    return (uint8_t)(acc < 0 ? 0 : acc > 255 ? 255 : acc);
}

/* One pixel as four int32 lanes (R, G, B, unused), so a tap is one vector multiply-add; the
 * integer arithmetic is the same as Pillow's, lane by lane. */
typedef int32_t rgbx_i32 __attribute__((vector_size(16)));

/* One row: dst[i] for each output column of the window, from the input row src; wide is
 * scratch for the input pixels the window reads. */
static void resize_row_horizontal(const uint8_t *src, const resize_axis *h, int n, rgbx_i32 *wide,
                                  uint8_t *dst) {
    int lo = h->first[0], hi = h->first[n - 1] + h->count[n - 1];
    for (int x = lo; x < hi; x++)
        wide[x - lo] = (rgbx_i32){src[3 * x], src[3 * x + 1], src[3 * x + 2], 0};
    for (int i = 0; i < n; i++, dst += 3) {
        const rgbx_i32 *p = wide + (h->first[i] - lo);
        const int32_t *k = h->k + (size_t)i * h->ksize;
        rgbx_i32 acc = {0, 0, 0, 0};
        acc += 1 << (COEFF_BITS - 1);
        for (int j = 0; j < h->count[i]; j++) acc += p[j] * k[j];
        dst[0] = clip8(acc[0]), dst[1] = clip8(acc[1]), dst[2] = clip8(acc[2]);
    }
}

/* One output row from rows[first..first+count) of the intermediate (row 0 = rows). */
static void resize_row_vertical(const uint8_t *rows, size_t stride, int first, int count,
                                const int32_t *k, int32_t *acc, size_t n, uint8_t *dst) {
    for (size_t x = 0; x < n; x++) acc[x] = 1 << (COEFF_BITS - 1);
    for (int j = 0; j < count; j++) {
        const uint8_t *src = rows + (size_t)(first + j) * stride;
        for (size_t x = 0; x < n; x++) acc[x] += src[x] * k[j];
    }
    for (size_t x = 0; x < n; x++) dst[x] = clip8(acc[x]);
}

/* The intermediate image: input rows [row0, row0+nrows), window columns only. */
typedef struct rgb_rows {
    const uint8_t *px;
    size_t stride;
    int row0;
    uint8_t *owned;
} rgb_rows;

static tl_status horizontal_pass(const tl_image *in, int out_w, int x0, int win_w, int row0,
                                 int nrows, rgb_rows *rows, tl_error *err) {
    size_t in_stride = (size_t)in->width * 3;
    rows->row0 = row0;
    if (out_w == in->width) { /* no horizontal pass: read the input in place */
        rows->px = in->rgb + (size_t)row0 * in_stride + (size_t)x0 * 3;
        rows->stride = in_stride;
        return TL_OK;
    }
    resize_axis h;
    tl_status st = axis_init(in->width, out_w, x0, win_w, &h, err);
    if (st != TL_OK) return st;
    rows->stride = (size_t)win_w * 3;
    rows->owned = malloc(rows->stride * (size_t)nrows);
    rgbx_i32 *wide = malloc((size_t)in->width * sizeof *wide);
    if (!rows->owned || !wide)
        st = tl_fail(err, TL_ERR_NOMEM, "out of memory for the resize buffer");
    for (int y = 0; st == TL_OK && y < nrows; y++)
        resize_row_horizontal(in->rgb + (size_t)(row0 + y) * in_stride, &h, win_w, wide,
                              rows->owned + (size_t)y * rows->stride);
    free(wide);
    rows->px = rows->owned;
    axis_free(&h);
    return st;
}

static tl_status vertical_pass(const rgb_rows *rows, int in_h, int out_h, int win_h,
                               const resize_axis *v, size_t row_bytes, uint8_t *dst,
                               tl_error *err) {
    if (out_h == in_h) {
        for (int y = 0; y < win_h; y++)
            memcpy(dst + (size_t)y * row_bytes, rows->px + (size_t)y * rows->stride, row_bytes);
        return TL_OK;
    }
    int32_t *acc = malloc(row_bytes * sizeof *acc);
    if (!acc) return tl_fail(err, TL_ERR_NOMEM, "out of memory for the resize accumulator");
    for (int y = 0; y < win_h; y++)
        resize_row_vertical(rows->px, rows->stride, v->first[y] - rows->row0, v->count[y],
                            v->k + (size_t)y * v->ksize, acc, row_bytes,
                            dst + (size_t)y * row_bytes);
    free(acc);
    return TL_OK;
}

static tl_status check_window(const tl_image *in, int out_w, int out_h, int x0, int y0, int win_w,
                              int win_h, tl_error *err) {
    if (!in || !in->rgb || in->width <= 0 || in->height <= 0)
        return tl_fail(err, TL_ERR_INVALID, "resize: empty input image");
    if (out_w <= 0 || out_h <= 0)
        return tl_fail(err, TL_ERR_INVALID, "resize: bad target size %dx%d", out_w, out_h);
    if (x0 < 0 || y0 < 0 || win_w <= 0 || win_h <= 0 || win_w > out_w - x0 || win_h > out_h - y0)
        return tl_fail(err, TL_ERR_INVALID, "resize: window outside the %dx%d target", out_w,
                       out_h);
    return TL_OK;
}

tl_status img_resize_window(const tl_image *in, int out_w, int out_h, int x0, int y0, int win_w,
                            int win_h, uint8_t *dst, tl_error *err) {
    tl_status st = check_window(in, out_w, out_h, x0, y0, win_w, win_h, err);
    if (st != TL_OK) return st;
    resize_axis v = {0};
    int row0 = y0, nrows = win_h; /* input rows the vertical pass reads */
    if (out_h != in->height) {
        st = axis_init(in->height, out_h, y0, win_h, &v, err);
        if (st != TL_OK) return st;
        row0 = v.first[0];
        nrows = v.first[win_h - 1] + v.count[win_h - 1] - row0;
    }
    rgb_rows rows = {0};
    st = horizontal_pass(in, out_w, x0, win_w, row0, nrows, &rows, err);
    if (st == TL_OK)
        st = vertical_pass(&rows, in->height, out_h, win_h, &v, (size_t)win_w * 3, dst, err);
    free(rows.owned);
    axis_free(&v);
    return st;
}

tl_status img_resize_bicubic(const tl_image *in, int out_w, int out_h, tl_image *out,
                             tl_error *err) {
    memset(out, 0, sizeof *out);
    tl_status st = check_window(in, out_w, out_h, 0, 0, out_w, out_h, err);
    if (st == TL_OK) st = img_alloc_checked(out, out_w, out_h, SIZE_MAX, err);
    if (st == TL_OK) st = img_resize_window(in, out_w, out_h, 0, 0, out_w, out_h, out->rgb, err);
    if (st != TL_OK) img_free(out);
    return st;
}
