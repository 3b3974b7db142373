/* libFuzzer target for image decoding: any bytes through img_decode (4-megapixel limit, EXIF
 * applied), then CLIP preprocessing at 32 px of whatever decoded. Must never crash or leak. */
#include <stdint.h>
#include <stdlib.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    img_decode_opts opts = {4u * 1000u * 1000u, 1};
    tl_image img;
    tl_error err;
    if (img_decode(data, size, &opts, &img, &err) != TL_OK) return 0;
    float *pixels = malloc(sizeof(float) * 3 * 32 * 32);
    if (pixels) img_clip_preprocess(&img, 32, IMG_CLIP_MEAN, IMG_CLIP_STD, pixels, &err);
    free(pixels);
    img_free(&img);
    return 0;
}
