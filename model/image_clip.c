/* CLIP preprocessing as HF CLIPImageProcessor (PIL path): shorter side resized to the model's
 * size with Pillow BICUBIC, centre crop rounding down, x * (1/255) in double cast to float,
 * then (x - mean) / std in float, CHW. Not for: decoding (image.c) or batching. */
#include "image_internal.h"

#include <limits.h>
#include <stdlib.h>

const float IMG_CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float IMG_CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

/* HF: new_long = int(size * long / short), the product exact and the division in double.
 * A result beyond INT_MAX is clamped to INT_MAX (img_clip_preprocess refuses such images). */
void img_clip_resize_dims(int w, int h, int size, int *out_w, int *out_h) {
    int portrait = w <= h;
    long long short_side = portrait ? w : h, long_side = portrait ? h : w;
    double scaled = short_side > 0 ? (double)(size * long_side) / (double)short_side : 0.0;
    int new_long = scaled >= (double)INT_MAX ? INT_MAX : (int)scaled;
    *out_w = portrait ? size : new_long;
    *out_h = portrait ? new_long : size;
}

void img_clip_crop_origin(int resized_w, int resized_h, int size, int *left, int *top) {
    *left = (resized_w - size) / 2;
    *top = (resized_h - size) / 2;
}

/* u8 -> float lookup per channel; each entry computed exactly as the reference does. */
static void normalise_table(const float mean[3], const float std[3], float table[3][256]) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = (float)(v * (1.0 / 255.0));
            table[c][v] = (x - mean[c]) / std[c];
        }
}

tl_status img_clip_preprocess(const tl_image *in, int size, const float mean[3], const float std[3],
                              float *out, tl_error *err) {
    if (!in || !in->rgb || in->width <= 0 || in->height <= 0)
        return tl_fail(err, TL_ERR_INVALID, "CLIP preprocessing: empty input image");
    if (size <= 0 || size > 1 << 14)
        return tl_fail(err, TL_ERR_INVALID, "CLIP preprocessing: bad image size %d", size);
    int rw, rh, left, top;
    img_clip_resize_dims(in->width, in->height, size, &rw, &rh);
    if (rw == INT_MAX || rh == INT_MAX)
        return tl_fail(err, TL_ERR_LIMIT, "CLIP preprocessing: %dx%d image is too elongated",
                       in->width, in->height);
    img_clip_crop_origin(rw, rh, size, &left, &top);
    size_t plane = (size_t)size * (size_t)size;
    uint8_t *crop = malloc(plane * 3);
    if (!crop) return tl_fail(err, TL_ERR_NOMEM, "out of memory for a %dx%d crop", size, size);
    tl_status st = img_resize_window(in, rw, rh, left, top, size, size, crop, err);
    if (st == TL_OK) {
        float table[3][256];
        normalise_table(mean, std, table);
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) out[(size_t)c * plane + i] = table[c][crop[i * 3 + c]];
    }
    free(crop);
    return st;
}
