/* Image decoding (JPEG, PNG, WebP from memory) to 8-bit RGB, a Pillow-exact BICUBIC resize,
 * and CLIP preprocessing into normalised CHW float32. Not for: encoding images. */
#ifndef TL_IMAGE_H
#define TL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define IMG_DEFAULT_MAX_PIXELS (40u * 1000u * 1000u) /* 40 megapixels */

typedef struct tl_image {
    int width, height;
    uint8_t *rgb; /* HWC, 3 bytes per pixel, owned (img_free) */
} tl_image;

typedef struct img_decode_opts {
    size_t max_pixels;  /* width*height limit checked from the header before decoding; 0 = default */
    int apply_exif;     /* 1: rotate/flip by the EXIF orientation tag (JPEG, WebP) */
} img_decode_opts;

/* Decodes JPEG, PNG or WebP (sniffed from magic bytes) into RGB, converting grey, palette,
 * alpha (dropped, as PIL's convert("RGB")) and 16-bit PNGs (high byte). opts may be NULL
 * (defaults, EXIF applied); the EXIF orientation is read from JPEG APP1 and the WebP EXIF
 * chunk. Corrupt or truncated data is TL_ERR_FORMAT; too many pixels (checked from the
 * header, before decoding) TL_ERR_LIMIT; animated WebP TL_ERR_UNSUPPORTED. On success
 * out->rgb is owned by the caller (img_free); on failure out is zeroed. */
tl_status img_decode(const uint8_t *bytes, size_t len, const img_decode_opts *opts,
                     tl_image *out, tl_error *err);

/* Reads a whole file and decodes it. */
tl_status img_load_file(const char *path, const img_decode_opts *opts, tl_image *out,
                        tl_error *err);

void img_free(tl_image *img);

/* Pillow's BICUBIC resize of 8-bit RGB (antialiased when shrinking), bit-exact. */
tl_status img_resize_bicubic(const tl_image *in, int out_w, int out_h, tl_image *out,
                             tl_error *err);

/* The size CLIPImageProcessor resizes to: shorter side = size, long side truncated. */
void img_clip_resize_dims(int w, int h, int size, int *out_w, int *out_h);

/* Top-left corner of the size x size centre crop of a resized_w x resized_h image:
 * (resized - size) / 2 rounded down, as HF does (torchvision rounds instead). */
void img_clip_crop_origin(int resized_w, int resized_h, int size, int *left, int *top);

/* CLIP preprocessing: resize shorter side to size, centre crop (floor), x/255, normalise with
 * mean/std. out is [3, size, size] float32, caller-owned. */
tl_status img_clip_preprocess(const tl_image *in, int size, const float mean[3],
                              const float std[3], float *out, tl_error *err);

extern const float IMG_CLIP_MEAN[3];
extern const float IMG_CLIP_STD[3];

#endif
