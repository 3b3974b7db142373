/* Private interface between image.c (format sniffing, limits, EXIF orientation) and the
 * per-format decoders in image_jpeg.c, image_png.c and image_webp.c.
 * Not for: code outside model/image*.c; other modules use image.h. */
#ifndef TL_IMAGE_INTERNAL_H
#define TL_IMAGE_INTERNAL_H

#include "image.h"

/* TL_OK when a w x h image has pixels, at most max_pixels of them, and a byte size that
 * fits size_t; otherwise TL_ERR_FORMAT (no pixels) or TL_ERR_LIMIT, with a message. */
tl_status img_check_size(long w, long h, size_t max_pixels, tl_error *err);

/* Checks w x h against max_pixels (TL_ERR_LIMIT) and allocates img->rgb for it; called by
 * each decoder right after parsing the header and before decoding any pixel. On success
 * img owns the buffer (img_free); on failure img is untouched. */
tl_status img_alloc_checked(tl_image *img, long w, long h, size_t max_pixels, tl_error *err);

/* Each decoder fills out (caller frees with img_free) and *orientation, the EXIF
 * orientation 1..8 found in the file (1 when absent or unreadable). */
tl_status img_decode_jpeg(const uint8_t *bytes, size_t len, size_t max_pixels, tl_image *out,
                          int *orientation, tl_error *err);
tl_status img_decode_png(const uint8_t *bytes, size_t len, size_t max_pixels, tl_image *out,
                         tl_error *err);
tl_status img_decode_webp(const uint8_t *bytes, size_t len, size_t max_pixels, tl_image *out,
                          int *orientation, tl_error *err);

/* The orientation tag (0x0112) of IFD0 in an EXIF payload: a TIFF block, optionally preceded
 * by "Exif\0\0". Returns 1..8; 1 when absent or when any offset points outside the block. */
int img_exif_orientation(const uint8_t *exif, size_t len);

/* Returns a new image with orientation 2..8 applied (flip/rotate as EXIF defines it);
 * out is owned by the caller. */
tl_status img_apply_orientation(const tl_image *in, int orientation, tl_image *out, tl_error *err);

/* Pixels [x0, x0+win_w) x [y0, y0+win_h) of Pillow's BICUBIC resize of in to out_w x out_h,
 * written HWC into dst (win_w * win_h * 3 bytes, caller-owned). Each output pixel depends
 * only on its own coordinates, so a window equals the same crop of the full resize. */
tl_status img_resize_window(const tl_image *in, int out_w, int out_h, int x0, int y0, int win_w,
                            int win_h, uint8_t *dst, tl_error *err);

#endif
