/* Image decoding entry points: sniffs the format from magic bytes, dispatches to the JPEG,
 * PNG or WebP decoder, applies the EXIF orientation and owns the pixel-buffer helpers.
 * Not for: format details (image_jpeg.c, image_png.c, image_webp.c) or resizing. */
#include "image_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef enum img_format {
    IMG_FORMAT_UNKNOWN,
    IMG_FORMAT_JPEG,
    IMG_FORMAT_PNG,
    IMG_FORMAT_WEBP
} img_format;

static img_format img_sniff(const uint8_t *b, size_t len) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return IMG_FORMAT_JPEG;
    if (len >= 8 && memcmp(b, png_magic, 8) == 0) return IMG_FORMAT_PNG;
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return IMG_FORMAT_WEBP;
    return IMG_FORMAT_UNKNOWN;
}

tl_status img_check_size(long w, long h, size_t max_pixels, tl_error *err) {
    if (w <= 0 || h <= 0) return tl_fail(err, TL_ERR_FORMAT, "image has no pixels (%ldx%ld)", w, h);
    size_t pixels, bytes;
    if (__builtin_mul_overflow((size_t)w, (size_t)h, &pixels) || pixels > max_pixels)
        return tl_fail(err, TL_ERR_LIMIT, "image of %ldx%ld pixels exceeds the limit of %zu pixels",
                       w, h, max_pixels);
    if (w > INT32_MAX || h > INT32_MAX || __builtin_mul_overflow(pixels, (size_t)3, &bytes))
        return tl_fail(err, TL_ERR_LIMIT, "image of %ldx%ld pixels is too large", w, h);
    return TL_OK;
}

tl_status img_alloc_checked(tl_image *img, long w, long h, size_t max_pixels, tl_error *err) {
    tl_status st = img_check_size(w, h, max_pixels, err);
    if (st != TL_OK) return st;
    uint8_t *rgb = malloc((size_t)w * (size_t)h * 3);
    if (!rgb) return tl_fail(err, TL_ERR_NOMEM, "out of memory for a %ldx%ld image", w, h);
    img->width = (int)w;
    img->height = (int)h;
    img->rgb = rgb;
    return TL_OK;
}

static tl_status img_decode_format(const uint8_t *bytes, size_t len, size_t max_pixels,
                                   tl_image *out, int *orientation, tl_error *err) {
    switch (img_sniff(bytes, len)) {
        case IMG_FORMAT_JPEG:
            return img_decode_jpeg(bytes, len, max_pixels, out, orientation, err);
        case IMG_FORMAT_PNG:
            return img_decode_png(bytes, len, max_pixels, out, err);
        case IMG_FORMAT_WEBP:
            return img_decode_webp(bytes, len, max_pixels, out, orientation, err);
        case IMG_FORMAT_UNKNOWN:
            break;
    }
    return tl_fail(err, TL_ERR_FORMAT,
                   "unknown image format (not JPEG, PNG or WebP by its first bytes)");
}

/* EXIF orientation is applied by default although the reference (PIL, HF CLIPImageProcessor)
 * ignores it: shoppers upload phone photos, which are stored sideways with an orientation
 * tag. The reference vectors carry no EXIF, so they are unaffected. */
tl_status img_decode(const uint8_t *bytes, size_t len, const img_decode_opts *opts, tl_image *out,
                     tl_error *err) {
    size_t max_pixels = opts && opts->max_pixels ? opts->max_pixels : IMG_DEFAULT_MAX_PIXELS;
    int apply_exif = opts ? opts->apply_exif : 1;
    memset(out, 0, sizeof *out);
    if (!bytes || len == 0) return tl_fail(err, TL_ERR_FORMAT, "empty image data (0 bytes)");
    int orientation = 1;
    tl_image decoded = {0};
    tl_status st = img_decode_format(bytes, len, max_pixels, &decoded, &orientation, err);
    if (st != TL_OK) return st;
    if (!apply_exif || orientation == 1) {
        *out = decoded;
        return TL_OK;
    }
    st = img_apply_orientation(&decoded, orientation, out, err);
    img_free(&decoded);
    return st;
}

/* Reads the whole of the regular file f into a new buffer (caller frees) of *len bytes. */
static tl_status read_whole_file(FILE *f, const char *path, uint8_t **out, size_t *len,
                                 tl_error *err) {
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        return tl_fail(err, TL_ERR_IO, "%s is not a readable regular file", path);
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return tl_fail(err, TL_ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, size);
    if (fread(buf, 1, size, f) != size) {
        free(buf);
        return tl_fail(err, TL_ERR_IO, "cannot read %s", path);
    }
    *out = buf;
    *len = size;
    return TL_OK;
}

tl_status img_load_file(const char *path, const img_decode_opts *opts, tl_image *out,
                        tl_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0;
    tl_status st = read_whole_file(f, path, &buf, &len, err);
    fclose(f);
    if (st != TL_OK) return st;
    st = img_decode(buf, len, opts, out, err);
    free(buf);
    if (st != TL_OK) tl_error_prefix(err, "%s", path);
    return st;
}

void img_free(tl_image *img) {
    if (!img) return;
    free(img->rgb);
    img->rgb = NULL;
    img->width = img->height = 0;
}
