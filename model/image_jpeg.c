/* JPEG decoding with libjpeg-turbo's defaults (ISLOW IDCT, fancy upsampling, JCS_RGB output),
 * which reproduce Pillow's decoded pixels bit for bit; errors longjmp back, never exit.
 * Not for: encoding, or DCT-domain scaling (it would change the pixels). */
#include "image_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* A hostile progressive JPEG can hold thousands of tiny scans, each a full pass over the
 * coefficients; real encoders write about ten. */
#define JPEG_MAX_SCANS 500

typedef struct jpeg_error_ctx {
    struct jpeg_error_mgr pub;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_error_ctx;

static void jpeg_error_longjmp(j_common_ptr cinfo) {
    jpeg_error_ctx *ctx = (jpeg_error_ctx *)cinfo->err;
    ctx->pub.format_message(cinfo, ctx->message);
    longjmp(ctx->jump, 1);
}

/* Warnings that mean the entropy-coded data is damaged or cut short are errors for us (the
 * decoder would otherwise fill the rest with grey); harmless ones (extraneous bytes, odd
 * JFIF versions) are ignored. Trace messages (level > 0) are dropped. */
static void jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    switch (cinfo->err->msg_code) {
        case JWRN_JPEG_EOF:
        case JWRN_HIT_MARKER:
        case JWRN_HUFF_BAD_CODE:
        case JWRN_ARITH_BAD_CODE:
        case JWRN_MUST_RESYNC:
            jpeg_error_longjmp(cinfo);
            break;
        default:
            break;
    }
}

/* Ends decoding with our own message (libjpeg's error_exit path, without a code). */
static void jpeg_fail(j_common_ptr cinfo, const char *message) {
    jpeg_error_ctx *ctx = (jpeg_error_ctx *)cinfo->err;
    snprintf(ctx->message, sizeof ctx->message, "%s", message);
    longjmp(ctx->jump, 1);
}

static void jpeg_limit_scans(j_common_ptr cinfo) {
    if (cinfo->is_decompressor && ((j_decompress_ptr)cinfo)->input_scan_number > JPEG_MAX_SCANS)
        jpeg_fail(cinfo, "too many progressive scans");
}

/* The EXIF orientation from the first APP1 "Exif" segment saved by jpeg_save_markers. */
static int jpeg_orientation(j_decompress_ptr cinfo) {
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return img_exif_orientation(m->data, m->data_length);
    return 1;
}

/* Pillow's CMYK -> RGB: an Adobe CMYK JPEG stores inverted inks ("CMYK;I"), then
 * r = (255 - k) - c * (255 - k) / 255 with Pillow's rounding MULDIV255. */
static uint8_t cmyk_channel(unsigned c, unsigned k) {
    unsigned nk = 255 - k, t = c * nk + 128;
    return (uint8_t)(nk - (((t >> 8) + t) >> 8));
}

static void cmyk_row_to_rgb(const uint8_t *cmyk, int width, int inverted, uint8_t *rgb) {
    for (int x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        unsigned inv = inverted ? 255 : 0, k = cmyk[3] ^ inv;
        for (int c = 0; c < 3; c++) rgb[c] = cmyk_channel(cmyk[c] ^ inv, k);
    }
}

/* Reads every scanline into out->rgb (already sized). Errors longjmp out. */
static void jpeg_read_pixels(j_decompress_ptr cinfo, tl_image *out) {
    size_t stride = (size_t)out->width * 3;
    int cmyk = cinfo->out_color_space == JCS_CMYK;
    JSAMPARRAY cmyk_row = cmyk ? cinfo->mem->alloc_sarray((j_common_ptr)cinfo, JPOOL_IMAGE,
                                                          (JDIMENSION)out->width * 4, 1)
                               : NULL;
    while (cinfo->output_scanline < cinfo->output_height) {
        uint8_t *dst = out->rgb + (size_t)cinfo->output_scanline * stride;
        JSAMPROW row = cmyk ? cmyk_row[0] : dst;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) break;
        if (cmyk) cmyk_row_to_rgb(row, out->width, cinfo->saw_Adobe_marker, dst);
    }
}

static void jpeg_choose_output(j_decompress_ptr cinfo) {
    int ink = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = ink ? JCS_CMYK : JCS_RGB;
}

tl_status img_decode_jpeg(const uint8_t *bytes, size_t len, size_t max_pixels, tl_image *out,
                          int *orientation, tl_error *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_error_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.pub);
    ctx.pub.error_exit = jpeg_error_longjmp;
    ctx.pub.emit_message = jpeg_emit_message;
    ctx.progress.progress_monitor = jpeg_limit_scans;
    if (setjmp(ctx.jump)) {
        jpeg_destroy_decompress(&cinfo);
        img_free(out);
        return tl_fail(err, TL_ERR_FORMAT, "corrupt JPEG: %s", ctx.message);
    }
    jpeg_create_decompress(&cinfo);
    cinfo.progress = &ctx.progress;
    jpeg_mem_src(&cinfo, bytes, (unsigned long)len);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&cinfo, TRUE);
    tl_status st = img_alloc_checked(out, cinfo.image_width, cinfo.image_height, max_pixels, err);
    if (st != TL_OK) {
        jpeg_destroy_decompress(&cinfo);
        tl_error_prefix(err, "JPEG");
        return st;
    }
    *orientation = jpeg_orientation(&cinfo);
    jpeg_choose_output(&cinfo);
    jpeg_start_decompress(&cinfo);
    int components = cinfo.out_color_space == JCS_CMYK ? 4 : 3;
    if (cinfo.output_width != (JDIMENSION)out->width ||
        cinfo.output_height != (JDIMENSION)out->height || cinfo.output_components != components)
        jpeg_fail((j_common_ptr)&cinfo, "unexpected output layout");
    jpeg_read_pixels(&cinfo, out);
    if (cinfo.output_scanline < cinfo.output_height)
        jpeg_fail((j_common_ptr)&cinfo, "fewer scanlines than the header declares");
    jpeg_destroy_decompress(&cinfo);
    return TL_OK;
}
