/* WebP decoding with libwebp into 8-bit RGB (alpha dropped), with the EXIF orientation read
 * from the RIFF container's EXIF chunk. Not for: animated WebP (refused), encoding. */
#include "image_internal.h"

#include <string.h>

#include <webp/decode.h>

#define RIFF_HEADER_BYTES  12 /* "RIFF", size, "WEBP" */
#define CHUNK_HEADER_BYTES 8  /* fourcc, size */

/* What the RIFF walk finds before libwebp sees the data. */
typedef struct webp_container {
    long canvas_width, canvas_height; /* from VP8X; 0 when there is no VP8X chunk */
    const uint8_t *exif;
    size_t exif_len;
} webp_container;

static uint32_t read_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t read_le24(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

/* Walks the chunks after the RIFF header, stopping quietly at the end of the data or at a
 * chunk that runs past it (libwebp then reports the truncation). */
static void webp_scan_chunks(const uint8_t *bytes, size_t len, webp_container *c) {
    size_t pos = RIFF_HEADER_BYTES;
    while (len - pos >= CHUNK_HEADER_BYTES) {
        const uint8_t *chunk = bytes + pos;
        size_t size = read_le32(chunk + 4), room = len - pos - CHUNK_HEADER_BYTES;
        if (size > room) size = room;
        const uint8_t *payload = chunk + CHUNK_HEADER_BYTES;
        if (memcmp(chunk, "VP8X", 4) == 0 && size >= 10) {
            c->canvas_width = (long)read_le24(payload + 4) + 1;
            c->canvas_height = (long)read_le24(payload + 7) + 1;
        } else if (memcmp(chunk, "EXIF", 4) == 0 && !c->exif) {
            c->exif = payload;
            c->exif_len = size;
        }
        pos += CHUNK_HEADER_BYTES + size + (size & 1);
        if (pos > len) break;
    }
}

static tl_status webp_status_error(VP8StatusCode code, tl_error *err) {
    switch (code) {
        case VP8_STATUS_NOT_ENOUGH_DATA:
            return tl_fail(err, TL_ERR_FORMAT, "truncated WebP data");
        case VP8_STATUS_UNSUPPORTED_FEATURE:
            return tl_fail(err, TL_ERR_UNSUPPORTED, "WebP uses a feature libwebp cannot decode");
        default:
            return tl_fail(err, TL_ERR_FORMAT, "corrupt WebP header (libwebp status %d)",
                           (int)code);
    }
}

/* Checks the canvas size declared by VP8X before libwebp parses further, then the bitstream
 * header via WebPGetFeatures; allocates out for the image. */
static tl_status webp_read_header(const uint8_t *bytes, size_t len, size_t max_pixels,
                                  const webp_container *c, tl_image *out, tl_error *err) {
    if (c->canvas_width) {
        tl_status st = img_check_size(c->canvas_width, c->canvas_height, max_pixels, err);
        if (st != TL_OK) return st;
    }
    WebPBitstreamFeatures features;
    VP8StatusCode code = WebPGetFeatures(bytes, len, &features);
    if (code != VP8_STATUS_OK) return webp_status_error(code, err);
    if (features.has_animation)
        return tl_fail(err, TL_ERR_UNSUPPORTED,
                       "animated WebP is not supported; upload a still image");
    return img_alloc_checked(out, features.width, features.height, max_pixels, err);
}

tl_status img_decode_webp(const uint8_t *bytes, size_t len, size_t max_pixels, tl_image *out,
                          int *orientation, tl_error *err) {
    webp_container container = {0};
    webp_scan_chunks(bytes, len, &container);
    tl_status st = webp_read_header(bytes, len, max_pixels, &container, out, err);
    if (st != TL_OK) {
        tl_error_prefix(err, "WebP");
        return st;
    }
    size_t stride = (size_t)out->width * 3;
    if (!WebPDecodeRGBInto(bytes, len, out->rgb, stride * (size_t)out->height, (int)stride)) {
        img_free(out);
        return tl_fail(err, TL_ERR_FORMAT, "WebP: corrupt or truncated image data");
    }
    if (container.exif) *orientation = img_exif_orientation(container.exif, container.exif_len);
    return TL_OK;
}
