/* EXIF orientation: reads tag 0x0112 from a TIFF-structured EXIF block (both byte orders,
 * every offset bounds-checked) and flips/rotates decoded pixels accordingly.
 * Not for: any other EXIF tag, or finding the EXIF block inside a file (the decoders do). */
#include "image_internal.h"

#include <string.h>

#define EXIF_TAG_ORIENTATION 0x0112
#define TIFF_TYPE_SHORT      3

typedef struct tiff_reader {
    const uint8_t *data;
    size_t len;
    int big_endian;
} tiff_reader;

/* Reads a u16/u32 at off into *v; returns 0 when it would read past the block. */
static int tiff_u16(const tiff_reader *t, size_t off, unsigned *v) {
    if (off > t->len || t->len - off < 2) return 0;
    const uint8_t *p = t->data + off;
    *v = t->big_endian ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]);
    return 1;
}

static int tiff_u32(const tiff_reader *t, size_t off, uint32_t *v) {
    unsigned hi, lo;
    if (!tiff_u16(t, off, t->big_endian ? &hi : &lo) ||
        !tiff_u16(t, off + 2, t->big_endian ? &lo : &hi))
        return 0;
    *v = (uint32_t)hi << 16 | lo;
    return 1;
}

int img_exif_orientation(const uint8_t *exif, size_t len) {
    if (len >= 6 && memcmp(exif, "Exif\0\0", 6) == 0) exif += 6, len -= 6;
    if (len < 8) return 1;
    tiff_reader t = {exif, len, 0};
    if (memcmp(exif, "MM\0*", 4) == 0)
        t.big_endian = 1;
    else if (memcmp(exif, "II*\0", 4) != 0)
        return 1;
    uint32_t ifd;
    unsigned count;
    if (!tiff_u32(&t, 4, &ifd) || !tiff_u16(&t, ifd, &count)) return 1;
    for (unsigned i = 0; i < count; i++) {
        size_t entry = (size_t)ifd + 2 + (size_t)i * 12;
        unsigned tag, type, value;
        uint32_t n;
        if (!tiff_u16(&t, entry, &tag) || !tiff_u16(&t, entry + 2, &type) ||
            !tiff_u32(&t, entry + 4, &n) || !tiff_u16(&t, entry + 8, &value))
            return 1;
        if (tag != EXIF_TAG_ORIENTATION) continue;
        return type == TIFF_TYPE_SHORT && n == 1 && value >= 1 && value <= 8 ? (int)value : 1;
    }
    return 1;
}

/* The source pixel of output pixel (x, y) for an image of w x h source pixels. */
static void orientation_source(int orientation, int w, int h, int x, int y, int *sx, int *sy) {
    switch (orientation) {
        case 2: /* mirror left-right */
            *sx = w - 1 - x, *sy = y;
            return;
        case 3: /* rotate 180 */
            *sx = w - 1 - x, *sy = h - 1 - y;
            return;
        case 4: /* mirror top-bottom */
            *sx = x, *sy = h - 1 - y;
            return;
        case 5: /* transpose */
            *sx = y, *sy = x;
            return;
        case 6: /* rotate 90 clockwise */
            *sx = y, *sy = h - 1 - x;
            return;
        case 7: /* transverse */
            *sx = w - 1 - y, *sy = h - 1 - x;
            return;
        case 8: /* rotate 90 counter-clockwise */
            *sx = w - 1 - y, *sy = x;
            return;
        default:
            *sx = x, *sy = y;
            return;
    }
}

tl_status img_apply_orientation(const tl_image *in, int orientation, tl_image *out, tl_error *err) {
    int swap = orientation >= 5 && orientation <= 8;
    int ow = swap ? in->height : in->width, oh = swap ? in->width : in->height;
    tl_status st = img_alloc_checked(out, ow, oh, (size_t)ow * (size_t)oh, err);
    if (st != TL_OK) return st;
    for (int y = 0; y < oh; y++) {
        uint8_t *dst = out->rgb + (size_t)y * (size_t)ow * 3;
        for (int x = 0; x < ow; x++, dst += 3) {
            int sx, sy;
            orientation_source(orientation, in->width, in->height, x, y, &sx, &sy);
            memcpy(dst, in->rgb + ((size_t)sy * (size_t)in->width + (size_t)sx) * 3, 3);
        }
    }
    return TL_OK;
}
