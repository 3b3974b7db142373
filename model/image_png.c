/* PNG decoding with libpng into 8-bit RGB the way PIL's convert("RGB") sees the file: grey
 * replicated, palette looked up, alpha (and tRNS) dropped, 16-bit samples cut to their high
 * byte, interlacing undone. Errors longjmp back to us, never exit. Not for: encoding, APNG. */
#include "image_internal.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

typedef struct png_reader {
    const uint8_t *bytes;
    size_t len, pos;
    char message[256];
} png_reader;

static void png_read_from_memory(png_structp png, png_bytep dst, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (n > r->len - r->pos) png_error(png, "truncated PNG data");
    memcpy(dst, r->bytes + r->pos, n);
    r->pos += n;
}

static void png_error_longjmp(png_structp png, png_const_charp message) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

/* 16-bit samples: PIL reads RGB/RGBA/LA ;16B data by its high byte, which png_set_strip_16
 * does too. A 16-bit grey PNG becomes PIL mode "I", whose convert("RGB") saturates every
 * value above 255 to white; we take the high byte there as well (a usable picture rather
 * than a white one), a deliberate difference from PIL. */
static void png_request_rgb8(png_structp png, png_infop info) {
    png_set_expand(png); /* palette -> RGB, grey < 8 bits -> 8 bits, tRNS -> alpha */
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

/* Reads the pixels into out->rgb (already sized). Errors longjmp out. */
static void png_read_pixels(png_structp png, png_infop info, tl_image *out, png_bytep *rows) {
    size_t stride = (size_t)out->width * 3;
    if (png_get_rowbytes(png, info) != stride || png_get_channels(png, info) != 3)
        png_error(png, "unexpected row layout after conversion to RGB");
    for (int y = 0; y < out->height; y++) rows[y] = out->rgb + (size_t)y * stride;
    png_read_image(png, rows);
}

tl_status img_decode_png(const uint8_t *bytes, size_t len, size_t max_pixels, tl_image *out,
                         tl_error *err) {
    png_reader reader = {bytes, len, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_error_longjmp,
                                             png_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return tl_fail(err, TL_ERR_NOMEM, "out of memory creating the PNG decoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        img_free(out);
        return tl_fail(err, TL_ERR_FORMAT, "corrupt PNG: %s", reader.message);
    }
    png_set_read_fn(png, &reader, png_read_from_memory);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff); /* our max_pixels decides instead */
    png_read_info(png, info);
    tl_status st = img_alloc_checked(out, (long)png_get_image_width(png, info),
                                     (long)png_get_image_height(png, info), max_pixels, err);
    if (st == TL_OK) {
        rows = malloc((size_t)out->height * sizeof *rows);
        if (!rows) st = tl_fail(err, TL_ERR_NOMEM, "out of memory for PNG row pointers");
    }
    if (st == TL_OK) {
        png_request_rgb8(png, info);
        png_read_pixels(png, info, out, rows);
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    if (st != TL_OK) {
        img_free(out);
        tl_error_prefix(err, "PNG");
    }
    return st;
}
