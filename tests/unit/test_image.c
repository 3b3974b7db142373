/* Tests for model/image*.c: reference vectors (decoded RGB, resize, CLIP pixel values), colour
 * conversions of PNGs written here with libpng, WebP and JPEG round trips, EXIF orientation,
 * and bad or hostile input (truncation, corruption, oversized headers, broken EXIF). */
#include <jansson.h>
#include <jpeglib.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <webp/encode.h>

#include "harness.h"
#include "image.h"
#include "image_internal.h"
#include "safetensors.h"

/* ---- helpers: growable byte buffers, files, reference data ---- */

typedef struct byte_buf {
    uint8_t *data;
    size_t len, cap;
} byte_buf;

static void buf_append(byte_buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16),
    p[3] = (uint8_t)(v >> 24);
}

/* CRC-32 as PNG chunks use it (ISO 3309, reflected 0xedb88320). */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++) c = c >> 1 ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static tl_status decode(const uint8_t *bytes, size_t len, int apply_exif, tl_image *out,
                        tl_error *err) {
    img_decode_opts opts = {0, apply_exif};
    return img_decode(bytes, len, &opts, out, err);
}

static int message_has(const tl_error *err, const char *word) {
    return strstr(err->message, word) != NULL;
}

/* ---- reference vectors ---- */

static json_t *load_json(const char *set) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/expected.json", th_testdata(), set);
    return json_load_file(path, 0, NULL);
}

static st_file *open_st(const char *set, const char *name) {
    char path[1024];
    tl_error err;
    st_file *f = NULL;
    snprintf(path, sizeof path, "%s/%s/%s", th_testdata(), set, name);
    if (st_open(&f, path, &err) != TL_OK) printf("# %s\n", err.message);
    return f;
}

static int load_reference_image(const char *set, const char *file, tl_image *img) {
    char path[1024];
    tl_error err;
    img_decode_opts opts = {0, 0};
    snprintf(path, sizeof path, "%s/%s/%s", th_testdata(), set, file);
    tl_status st = img_load_file(path, &opts, img, &err);
    if (st != TL_OK) printf("# %s\n", err.message);
    return st == TL_OK;
}

/* Checks that tensor name is U8 [h, w, 3] and equals img's pixels byte for byte. */
static void check_u8_image(st_file *f, const char *name, const tl_image *img) {
    const st_tensor *t = st_find(f, name);
    REQUIRE(t);
    REQUIRE(t->dtype == ST_U8 && t->ndim == 3);
    CHECKF(t->shape[0] == img->height && t->shape[1] == img->width && t->shape[2] == 3,
           "%s is %lldx%lld, decoded %dx%d", name, (long long)t->shape[1], (long long)t->shape[0],
           img->width, img->height);
    REQUIRE(t->nbytes == (size_t)img->width * img->height * 3);
    size_t diff = 0;
    for (size_t i = 0; i < t->nbytes; i++) diff += ((const uint8_t *)t->data)[i] != img->rgb[i];
    CHECKF(diff == 0, "%s: %zu bytes differ", name, diff);
}

/* Checks img_clip_preprocess of img against row k of expected (F32 [N,3,S,S]). */
static void check_pixel_values(const tl_image *img, int size, const float *expected, int k) {
    size_t n = (size_t)3 * size * size;
    float *pv = malloc(n * sizeof *pv);
    tl_error err;
    REQUIRE(pv);
    CHECK(img_clip_preprocess(img, size, IMG_CLIP_MEAN, IMG_CLIP_STD, pv, &err) == TL_OK);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)pv[i] - (double)expected[(size_t)k * n + i]);
        if (d > worst) worst = d;
    }
    CHECKF(worst <= 1e-6, "image %d: pixel values differ by %g", k, worst);
    free(pv);
}

/* Resized size and crop box of img equal the reference's. */
static void check_geometry(const tl_image *img, int size, int resized_w, int resized_h,
                           json_t *crop) {
    int rw, rh, left, top;
    img_clip_resize_dims(img->width, img->height, size, &rw, &rh);
    CHECKF(rw == resized_w && rh == resized_h, "resized %dx%d, expected %dx%d", rw, rh, resized_w,
           resized_h);
    img_clip_crop_origin(rw, rh, size, &left, &top);
    CHECK(left == json_integer_value(json_array_get(crop, 0)));
    CHECK(top == json_integer_value(json_array_get(crop, 1)));
    CHECK(left + size == json_integer_value(json_array_get(crop, 2)));
    CHECK(top + size == json_integer_value(json_array_get(crop, 3)));
}

TEST(clip_tiny_reference_images) {
    json_t *root = load_json("clip-tiny");
    st_file *f = open_st("clip-tiny", "expected.safetensors");
    REQUIRE(root && f);
    json_t *pre = json_object_get(root, "preprocess"), *images = json_object_get(pre, "images");
    int size = (int)json_integer_value(json_object_get(pre, "image_size"));
    size_t n = json_array_size(images);
    CHECK(n == 6 && size == 64);
    tl_error err;
    const float *expected = NULL;
    int64_t shape[4] = {(int64_t)n, 3, size, size};
    CHECK(st_get_f32(f, "vision.pixel_values", 4, shape, &expected, &err) == TL_OK);
    for (size_t k = 0; k < n && expected; k++) {
        json_t *im = json_array_get(images, k);
        tl_image img, resized;
        char name[64];
        if (!load_reference_image("clip-tiny", json_string_value(json_object_get(im, "file")),
                                  &img)) {
            CHECK(0);
            continue;
        }
        CHECK(img.width == json_integer_value(json_object_get(im, "width")));
        CHECK(img.height == json_integer_value(json_object_get(im, "height")));
        snprintf(name, sizeof name, "image.%zu.rgb", k);
        check_u8_image(f, name, &img);
        int rw = (int)json_integer_value(json_object_get(im, "resized_width"));
        int rh = (int)json_integer_value(json_object_get(im, "resized_height"));
        check_geometry(&img, size, rw, rh, json_object_get(im, "crop_box_ltrb"));
        CHECK(img_resize_bicubic(&img, rw, rh, &resized, &err) == TL_OK);
        snprintf(name, sizeof name, "image.%zu.resized", k);
        check_u8_image(f, name, &resized);
        check_pixel_values(&img, size, expected, (int)k);
        img_free(&resized);
        img_free(&img);
    }
    st_close(f);
    json_decref(root);
}

TEST(tailor_tiny_reference_images) {
    json_t *root = load_json("tailor-tiny");
    st_file *f = open_st("tailor-tiny", "inputs.safetensors");
    REQUIRE(root && f);
    json_t *images = json_object_get(json_object_get(root, "inputs"), "images");
    size_t n = json_array_size(images);
    const int size = 32;
    const float *expected = NULL;
    int64_t shape[4] = {(int64_t)n, 3, size, size};
    tl_error err;
    CHECK(n == 4);
    CHECK(st_get_f32(f, "pixel_values", 4, shape, &expected, &err) == TL_OK);
    for (size_t k = 0; k < n && expected; k++) {
        json_t *im = json_array_get(images, k);
        tl_image img;
        CHECK(json_integer_value(json_object_get(im, "index")) == (json_int_t)k);
        if (!load_reference_image("tailor-tiny", json_string_value(json_object_get(im, "file")),
                                  &img)) {
            CHECK(0);
            continue;
        }
        json_t *resized = json_object_get(im, "resized");
        check_geometry(&img, size, (int)json_integer_value(json_array_get(resized, 0)),
                       (int)json_integer_value(json_array_get(resized, 1)),
                       json_object_get(im, "crop_box_ltrb"));
        check_pixel_values(&img, size, expected, (int)k);
        img_free(&img);
    }
    st_close(f);
    json_decref(root);
}

/* ---- PNG colour conversions: files written here with libpng ---- */

typedef struct png_spec {
    int width, height, bit_depth, color_type, interlace;
    const uint8_t *samples; /* rows of packed samples as libpng expects them (16-bit: BE) */
    const png_color *palette;
    int palette_len;
    const uint8_t *trns;
    int trns_len;
} png_spec;

static void png_write_to_buf(png_structp png, png_bytep data, size_t n) {
    buf_append(png_get_io_ptr(png), data, n);
}

static void png_flush_nothing(png_structp png) {
    (void)png;
}

static byte_buf encode_png(const png_spec *s) {
    byte_buf out = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(out.data);
        return (byte_buf){0};
    }
    png_set_write_fn(png, &out, png_write_to_buf, png_flush_nothing);
    png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, s->bit_depth,
                 s->color_type, s->interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->palette_len);
    if (s->trns) png_set_tRNS(png, info, s->trns, s->trns_len, NULL);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc((size_t)s->height * sizeof *rows);
    for (int y = 0; y < s->height; y++) rows[y] = (png_bytep)s->samples + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return out;
}

/* Decodes s and compares with the expected RGB bytes. */
static void check_png_decodes_to(const png_spec *s, const uint8_t *expected_rgb) {
    byte_buf png = encode_png(s);
    tl_image img;
    tl_error err;
    REQUIRE(png.data);
    tl_status st = decode(png.data, png.len, 1, &img, &err);
    free(png.data);
    CHECKF(st == TL_OK, "%s", err.message);
    if (st != TL_OK) return;
    CHECK(img.width == s->width && img.height == s->height);
    CHECK(memcmp(img.rgb, expected_rgb, (size_t)s->width * s->height * 3) == 0);
    img_free(&img);
}

enum { PW = 5, PH = 3, PN = PW * PH }; /* small, odd-sized test pictures */

TEST(png_grey_is_replicated) {
    uint8_t grey[PN], rgb[PN * 3];
    for (int i = 0; i < PN; i++) grey[i] = (uint8_t)(i * 17 + 3);
    for (int i = 0; i < PN * 3; i++) rgb[i] = grey[i / 3];
    png_spec s = {PW, PH, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, grey, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

TEST(png_low_bit_grey_is_scaled) {
    /* 2-bit grey, 4 pixels per byte: levels 0..3 scale to 0, 85, 170, 255 as in PIL */
    uint8_t packed[2] = {0x1b, 0xe4}, rgb[8 * 3];
    const int levels[8] = {0, 1, 2, 3, 3, 2, 1, 0};
    for (int i = 0; i < 24; i++) rgb[i] = (uint8_t)(levels[i / 3] * 85);
    png_spec s = {8, 1, 2, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, packed, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

TEST(png_grey_alpha_drops_alpha) {
    uint8_t ga[PN * 2], rgb[PN * 3];
    for (int i = 0; i < PN; i++)
        ga[2 * i] = (uint8_t)(250 - i * 11), ga[2 * i + 1] = (uint8_t)(i * 9);
    for (int i = 0; i < PN * 3; i++) rgb[i] = ga[2 * (i / 3)];
    png_spec s = {PW, PH, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, ga, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

TEST(png_palette_with_trns_looks_up_colours) {
    png_color palette[4] = {{10, 20, 30}, {200, 100, 0}, {0, 255, 128}, {77, 66, 55}};
    uint8_t trns[4] = {0, 128, 255, 7}, index[PN], rgb[PN * 3];
    for (int i = 0; i < PN; i++) {
        index[i] = (uint8_t)((i * 3) % 4);
        rgb[3 * i] = palette[index[i]].red;
        rgb[3 * i + 1] = palette[index[i]].green;
        rgb[3 * i + 2] = palette[index[i]].blue;
    }
    png_spec s = {PW, PH,   8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, index, palette,
                  4,  trns, 4};
    check_png_decodes_to(&s, rgb);
}

TEST(png_rgba_drops_alpha) {
    uint8_t rgba[PN * 4], rgb[PN * 3];
    for (int i = 0; i < PN * 4; i++) rgba[i] = (uint8_t)(i * 29 + 1);
    for (int i = 0; i < PN; i++) memcpy(rgb + 3 * i, rgba + 4 * i, 3);
    png_spec s = {PW, PH, 8, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE, rgba, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

TEST(png_16bit_rgb_keeps_high_byte) {
    uint8_t be16[PN * 6], rgb[PN * 3];
    for (int i = 0; i < PN * 3; i++) {
        be16[2 * i] = (uint8_t)(i * 13 + 5);      /* high byte */
        be16[2 * i + 1] = (uint8_t)(255 - i * 7); /* low byte: must not round the high one up */
        rgb[i] = be16[2 * i];
    }
    png_spec s = {PW, PH, 16, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, be16, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

TEST(png_16bit_grey_keeps_high_byte) {
    uint8_t be16[PN * 2], rgb[PN * 3];
    for (int i = 0; i < PN; i++) be16[2 * i] = (uint8_t)(i * 16), be16[2 * i + 1] = 0xff;
    for (int i = 0; i < PN * 3; i++) rgb[i] = be16[2 * (i / 3)];
    png_spec s = {PW, PH, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, be16, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

TEST(png_interlaced_round_trips) {
    enum { W = 13, H = 11 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)((i * 7919) >> 3);
    png_spec s = {W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rgb, NULL, 0, NULL, 0};
    check_png_decodes_to(&s, rgb);
}

/* ---- WebP ---- */

static void noise_rgb(uint8_t *rgb, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        rgb[i] = (uint8_t)(seed >> 24);
    }
}

/* A lossless WebP of w x h noise; the pixels go to rgb (w*h*3) when it is not NULL. */
static byte_buf encode_webp(int w, int h, uint8_t *rgb) {
    uint8_t *px = malloc((size_t)w * h * 3), *webp = NULL;
    noise_rgb(px, (size_t)w * h * 3, 7u);
    size_t len = WebPEncodeLosslessRGB(px, w, h, w * 3, &webp);
    if (rgb) memcpy(rgb, px, (size_t)w * h * 3);
    free(px);
    byte_buf out = {0};
    buf_append(&out, webp, len);
    WebPFree(webp);
    return out;
}

TEST(webp_lossless_round_trips) {
    enum { W = 19, H = 7 };
    uint8_t rgb[W * H * 3];
    byte_buf webp = encode_webp(W, H, rgb);
    tl_image img;
    tl_error err;
    REQUIRE(webp.len > 12);
    tl_status st = decode(webp.data, webp.len, 1, &img, &err);
    CHECKF(st == TL_OK, "%s", err.message);
    if (st == TL_OK) {
        CHECK(img.width == W && img.height == H);
        CHECK(memcmp(img.rgb, rgb, sizeof rgb) == 0);
        img_free(&img);
    }
    free(webp.data);
}

/* A RIFF/WEBP file of the given chunks: each entry a fourcc and its payload. */
static byte_buf riff_webp(const char *const *fourccs, const byte_buf *payloads, int n) {
    byte_buf out = {0};
    uint8_t head[12] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'}, zero = 0;
    buf_append(&out, head, 12);
    for (int i = 0; i < n; i++) {
        uint8_t chunk[8];
        memcpy(chunk, fourccs[i], 4);
        put_le32(chunk + 4, (uint32_t)payloads[i].len);
        buf_append(&out, chunk, 8);
        buf_append(&out, payloads[i].data, payloads[i].len);
        if (payloads[i].len & 1) buf_append(&out, &zero, 1);
    }
    put_le32(out.data + 4, (uint32_t)(out.len - 8));
    return out;
}

static byte_buf vp8x_payload(uint8_t flags, uint32_t w, uint32_t h) {
    uint8_t p[10] = {flags, 0, 0, 0};
    p[4] = (uint8_t)(w - 1), p[5] = (uint8_t)((w - 1) >> 8), p[6] = (uint8_t)((w - 1) >> 16);
    p[7] = (uint8_t)(h - 1), p[8] = (uint8_t)((h - 1) >> 8), p[9] = (uint8_t)((h - 1) >> 16);
    byte_buf b = {0};
    buf_append(&b, p, sizeof p);
    return b;
}

/* A TIFF block "II" or "MM" holding one IFD0 entry: orientation = value. */
static byte_buf exif_tiff(int big_endian, unsigned value) {
    uint8_t t[26] = {0};
    memcpy(t, big_endian ? "MM\0*" : "II*\0", 4);
    uint8_t v16[2] = {(uint8_t)value, 0}, tag[2] = {0x12, 0x01}, type[2] = {3, 0};
    uint8_t one[4] = {1, 0, 0, 0}, ifd[4] = {8, 0, 0, 0}, count[2] = {1, 0};
    if (big_endian) {
        v16[0] = 0, v16[1] = (uint8_t)value, tag[0] = 0x01, tag[1] = 0x12, type[0] = 0, type[1] = 3;
        memcpy(one, "\0\0\0\1", 4), memcpy(ifd, "\0\0\0\x08", 4), count[0] = 0, count[1] = 1;
    }
    memcpy(t + 4, ifd, 4);
    memcpy(t + 8, count, 2);
    memcpy(t + 10, tag, 2);
    memcpy(t + 12, type, 2);
    memcpy(t + 14, one, 4);
    memcpy(t + 18, v16, 2);
    byte_buf b = {0};
    buf_append(&b, t, sizeof t);
    return b;
}

/* The VP8L chunk payload of a simple lossless WebP. */
static byte_buf vp8l_payload(const byte_buf *webp) {
    uint32_t size = (uint32_t)webp->data[16] | (uint32_t)webp->data[17] << 8 |
                    (uint32_t)webp->data[18] << 16 | (uint32_t)webp->data[19] << 24;
    byte_buf b = {0};
    buf_append(&b, webp->data + 20, size);
    return b;
}

TEST(webp_exif_orientation_rotates) {
    enum { W = 6, H = 4 };
    uint8_t rgb[W * H * 3];
    byte_buf simple = encode_webp(W, H, rgb);
    REQUIRE(simple.len > 20 && memcmp(simple.data + 12, "VP8L", 4) == 0);
    const char *fourccs[3] = {"VP8X", "VP8L", "EXIF"};
    byte_buf payloads[3] = {vp8x_payload(0x08, W, H), vp8l_payload(&simple), exif_tiff(0, 6)};
    byte_buf file = riff_webp(fourccs, payloads, 3);
    tl_image img;
    tl_error err;
    tl_status st = decode(file.data, file.len, 1, &img, &err);
    CHECKF(st == TL_OK, "%s", err.message);
    if (st == TL_OK) {
        CHECK(img.width == H && img.height == W);
        /* rotated 90 degrees clockwise: output (x, y) shows source (y, H-1-x) */
        CHECK(memcmp(img.rgb, rgb + ((H - 1) * W) * 3, 3) == 0);
        CHECK(memcmp(img.rgb + (size_t)(img.width - 1) * 3, rgb, 3) == 0);
        img_free(&img);
    }
    for (int i = 0; i < 3; i++) free(payloads[i].data);
    free(file.data);
    free(simple.data);
}

TEST(webp_animated_is_refused) {
    const char *fourccs[2] = {"VP8X", "ANIM"};
    uint8_t anim[6] = {0};
    byte_buf payloads[2] = {vp8x_payload(0x02, 16, 16), {anim, 6, 6}};
    byte_buf file = riff_webp(fourccs, payloads, 2);
    tl_image img;
    tl_error err;
    CHECK(decode(file.data, file.len, 1, &img, &err) == TL_ERR_UNSUPPORTED);
    CHECKF(message_has(&err, "animated"), "%s", err.message);
    free(payloads[0].data);
    free(file.data);
}

/* ---- JPEG and EXIF ---- */

enum { JW = 16, JH = 8 }; /* non-square, so a rotation swaps the sides */

/* A JPEG of px (w x h, components bytes a pixel in colour space in), stored as `stored`
 * (JCS_UNKNOWN: libjpeg's default for in) at the given quality. */
static byte_buf compress_jpeg(const uint8_t *px, int w, int h, int components, J_COLOR_SPACE in,
                              J_COLOR_SPACE stored, int quality) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *mem = NULL;
    unsigned long len = 0;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &len);
    c.image_width = (JDIMENSION)w, c.image_height = (JDIMENSION)h;
    c.input_components = components, c.in_color_space = in;
    jpeg_set_defaults(&c);
    if (stored != JCS_UNKNOWN) jpeg_set_colorspace(&c, stored);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * w * components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    byte_buf out = {0};
    buf_append(&out, mem, len);
    free(mem);
    return out;
}

/* A baseline JPEG of JW x JH with four flat colour quadrants. */
static byte_buf encode_jpeg(void) {
    uint8_t rgb[JW * JH * 3];
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++) {
            uint8_t *p = rgb + (y * JW + x) * 3;
            p[0] = x < JW / 2 ? 230 : 20, p[1] = y < JH / 2 ? 200 : 40, p[2] = 120;
        }
    return compress_jpeg(rgb, JW, JH, 3, JCS_RGB, JCS_UNKNOWN, 95);
}

/* jpeg with an APP1 "Exif" segment holding tiff inserted right after SOI. */
static byte_buf jpeg_with_exif(const byte_buf *jpeg, const byte_buf *tiff) {
    byte_buf out = {0};
    size_t seg = 2 + 6 + tiff->len;
    uint8_t head[4] = {0xff, 0xe1, (uint8_t)(seg >> 8), (uint8_t)seg};
    buf_append(&out, jpeg->data, 2);
    buf_append(&out, head, 4);
    buf_append(&out, "Exif\0\0", 6);
    buf_append(&out, tiff->data, tiff->len);
    buf_append(&out, jpeg->data + 2, jpeg->len - 2);
    return out;
}

/* Decodes jpeg with EXIF orientation o (byte order big_endian) and checks every output
 * pixel against the unrotated decode through the mapping source(x, y). */
static void check_jpeg_orientation(int big_endian, unsigned o, int swaps,
                                   void (*source)(int x, int y, int *sx, int *sy)) {
    byte_buf jpeg = encode_jpeg(), tiff = exif_tiff(big_endian, o);
    byte_buf tagged = jpeg_with_exif(&jpeg, &tiff);
    tl_image plain, turned, ignored;
    tl_error err;
    REQUIRE(decode(jpeg.data, jpeg.len, 1, &plain, &err) == TL_OK);
    CHECK(decode(tagged.data, tagged.len, 1, &turned, &err) == TL_OK);
    CHECK(decode(tagged.data, tagged.len, 0, &ignored, &err) == TL_OK);
    CHECK(turned.width == (swaps ? JH : JW) && turned.height == (swaps ? JW : JH));
    CHECK(ignored.width == JW && memcmp(ignored.rgb, plain.rgb, JW * JH * 3) == 0);
    int mismatches = 0;
    for (int y = 0; y < turned.height && turned.rgb; y++)
        for (int x = 0; x < turned.width; x++) {
            int sx, sy;
            source(x, y, &sx, &sy);
            mismatches += memcmp(turned.rgb + (y * turned.width + x) * 3,
                                 plain.rgb + (sy * JW + sx) * 3, 3) != 0;
        }
    CHECKF(mismatches == 0, "orientation %u: %d pixels misplaced", o, mismatches);
    img_free(&plain), img_free(&turned), img_free(&ignored);
    free(jpeg.data), free(tiff.data), free(tagged.data);
}

static void rotated_cw(int x, int y, int *sx, int *sy) {
    *sx = y, *sy = JH - 1 - x;
}
static void rotated_ccw(int x, int y, int *sx, int *sy) {
    *sx = JW - 1 - y, *sy = x;
}
static void rotated_180(int x, int y, int *sx, int *sy) {
    *sx = JW - 1 - x, *sy = JH - 1 - y;
}
static void mirrored(int x, int y, int *sx, int *sy) {
    *sx = JW - 1 - x, *sy = y;
}

TEST(jpeg_exif_orientation_6_rotates_clockwise) {
    check_jpeg_orientation(0, 6, 1, rotated_cw);
    check_jpeg_orientation(1, 6, 1, rotated_cw);
}

TEST(jpeg_exif_other_orientations) {
    check_jpeg_orientation(1, 8, 1, rotated_ccw);
    check_jpeg_orientation(0, 3, 0, rotated_180);
    check_jpeg_orientation(1, 2, 0, mirrored);
}

TEST(exif_offsets_outside_segment_are_ignored) {
    byte_buf tiff = exif_tiff(0, 6);
    CHECK(img_exif_orientation(tiff.data, tiff.len) == 6);
    CHECK(img_exif_orientation(tiff.data, 19) == 1); /* value cut off */
    put_le32(tiff.data + 4, 0xfffffff0u);            /* IFD offset far outside */
    CHECK(img_exif_orientation(tiff.data, tiff.len) == 1);
    put_le32(tiff.data + 4, 8);
    tiff.data[8] = 0xff, tiff.data[9] = 0xff; /* 65535 entries in a 26-byte block */
    tiff.data[10] = 0;                        /* first entry is not the orientation */
    CHECK(img_exif_orientation(tiff.data, tiff.len) == 1);
    byte_buf jpeg = encode_jpeg(), tagged = jpeg_with_exif(&jpeg, &tiff);
    tl_image img;
    tl_error err;
    CHECK(decode(tagged.data, tagged.len, 1, &img, &err) == TL_OK);
    CHECK(img.width == JW && img.height == JH);
    img_free(&img);
    free(tiff.data), free(jpeg.data), free(tagged.data);
}

/* An Adobe CMYK JPEG (libjpeg writes the Adobe marker for YCCK) of flat stored values, which
 * Adobe's convention reads inverted: 255 = no ink. */
static byte_buf encode_cmyk_jpeg(const uint8_t cmyk[4]) {
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 4];
    for (int i = 0; i < W * H; i++) memcpy(px + 4 * i, cmyk, 4);
    return compress_jpeg(px, W, H, 4, JCS_CMYK, JCS_YCCK, 100);
}

TEST(jpeg_cmyk_converts_like_pil) {
    /* stored (inverted) inks -> RGB: no ink is white, full magenta is (255, 0, 255), and
     * half black halves every channel */
    const uint8_t inks[3][4] = {{255, 255, 255, 255}, {255, 0, 255, 255}, {255, 255, 255, 128}};
    const int want[3][3] = {{255, 255, 255}, {255, 0, 255}, {128, 128, 128}};
    for (int i = 0; i < 3; i++) {
        byte_buf jpeg = encode_cmyk_jpeg(inks[i]);
        tl_image img;
        tl_error err;
        tl_status st = decode(jpeg.data, jpeg.len, 1, &img, &err);
        CHECKF(st == TL_OK, "%s", err.message);
        for (int c = 0; st == TL_OK && c < 3; c++)
            CHECKF(abs(img.rgb[(8 * 16 + 8) * 3 + c] - want[i][c]) <= 2, "ink %d channel %d: %d", i,
                   c, img.rgb[(8 * 16 + 8) * 3 + c]);
        if (st == TL_OK) img_free(&img);
        free(jpeg.data);
    }
}

/* ---- bad input ---- */

/* bytes must fail to decode with status code (any error when code is TL_OK), with a message
 * holding word; the same status comes back when no tl_error is passed. */
static void check_rejected(const uint8_t *bytes, size_t len, tl_status code, const char *word) {
    tl_image img = {1, 1, NULL};
    tl_error err = {0};
    tl_status st = decode(bytes, len, 1, &img, &err);
    CHECKF(st != TL_OK && (code == TL_OK || st == code), "status %s for %zu bytes",
           tl_status_name(st), len);
    CHECK(decode(bytes, len, 1, &img, NULL) == st);
    CHECKF(message_has(&err, word), "message \"%s\" lacks \"%s\"", err.message, word);
    CHECK(img.rgb == NULL && img.width == 0);
    img_free(&img);
}

TEST(empty_buffer_is_rejected) {
    uint8_t byte = 0;
    check_rejected(&byte, 0, TL_ERR_FORMAT, "empty");
    check_rejected(NULL, 0, TL_ERR_FORMAT, "empty");
}

TEST(unknown_format_is_rejected) {
    const char gif[] = "GIF89a\x01\x00\x01\x00\x00\x00\x00";
    check_rejected((const uint8_t *)gif, sizeof gif, TL_ERR_FORMAT, "unknown image format");
}

TEST(truncated_jpeg_is_rejected) {
    byte_buf jpeg = encode_jpeg();
    size_t cuts[] = {3, 20, jpeg.len / 3, jpeg.len / 2, jpeg.len - 40};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        check_rejected(jpeg.data, cuts[i], TL_OK, "JPEG");
    free(jpeg.data);
}

TEST(corrupted_jpeg_is_rejected) {
    byte_buf jpeg = encode_jpeg();
    size_t sos = 0;
    for (size_t i = 2; i + 1 < jpeg.len; i++)
        if (jpeg.data[i] == 0xff && jpeg.data[i + 1] == 0xda) sos = i;
    REQUIRE(sos > 0 && jpeg.len - sos > 30);
    /* garbage over the entropy-coded data, ending in a premature EOI */
    size_t data = sos + 2 + ((size_t)jpeg.data[sos + 2] << 8 | jpeg.data[sos + 3]);
    for (size_t i = data; i < jpeg.len - 2; i++) jpeg.data[i] = (uint8_t)(0x5a ^ (i * 37));
    jpeg.data[data + 4] = 0xff, jpeg.data[data + 5] = 0xd9;
    check_rejected(jpeg.data, jpeg.len, TL_ERR_FORMAT, "corrupt JPEG");
    free(jpeg.data);
}

static byte_buf sample_png(void) {
    enum { W = 24, H = 20 };
    static uint8_t rgb[W * H * 3];
    noise_rgb(rgb, sizeof rgb, 99u);
    png_spec s = {W, H, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb, NULL, 0, NULL, 0};
    return encode_png(&s);
}

TEST(truncated_png_is_rejected) {
    byte_buf png = sample_png();
    REQUIRE(png.len > 100);
    size_t cuts[] = {20, 33, 45, png.len / 2, png.len - 20};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        check_rejected(png.data, cuts[i], TL_ERR_FORMAT, "PNG");
    check_rejected(png.data, 5, TL_ERR_FORMAT, "unknown image format");
    free(png.data);
}

TEST(png_with_bad_crc_is_rejected) {
    byte_buf png = sample_png();
    png.data[8 + 8 + 13] ^= 0x55; /* the IHDR chunk's CRC */
    check_rejected(png.data, png.len, TL_ERR_FORMAT, "CRC");
    free(png.data);
}

TEST(truncated_webp_is_rejected) {
    byte_buf webp = encode_webp(40, 30, NULL);
    REQUIRE(webp.len > 200);
    size_t cuts[] = {16, 24, 30, webp.len / 2, webp.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++)
        check_rejected(webp.data, cuts[i], TL_ERR_FORMAT, "WebP");
    free(webp.data);
}

/* A PNG signature, an IHDR declaring w x h RGB, and an empty IDAT: no pixel data. */
static byte_buf png_header_only(uint32_t w, uint32_t h) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    uint8_t idat[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};
    put_be32(ihdr + 8, w);
    put_be32(ihdr + 12, h);
    ihdr[16] = 8, ihdr[17] = 2; /* 8-bit RGB, deflate, no filter, no interlace */
    put_be32(ihdr + 21, crc32_png(ihdr + 4, 17));
    put_be32(idat + 8, crc32_png(idat + 4, 4));
    byte_buf b = {0};
    buf_append(&b, sig, 8);
    buf_append(&b, ihdr, 25);
    buf_append(&b, idat, 12);
    return b;
}

TEST(huge_png_header_hits_limit) {
    byte_buf png = png_header_only(100000, 100000);
    check_rejected(png.data, png.len, TL_ERR_LIMIT, "exceeds the limit");
    free(png.data);
}

TEST(huge_jpeg_header_hits_limit) {
    /* A JPEG side holds 16 bits and libjpeg refuses more than 65500, so 60000 x 60000 is the
     * largest header it parses; only SOF0's size fields are changed, no pixels follow. */
    byte_buf jpeg = encode_jpeg();
    size_t sof = 0;
    for (size_t i = 2; i + 9 < jpeg.len && !sof; i++)
        if (jpeg.data[i] == 0xff && jpeg.data[i + 1] == 0xc0) sof = i;
    REQUIRE(sof);
    jpeg.data[sof + 5] = 60000 >> 8, jpeg.data[sof + 6] = 60000 & 0xff;
    jpeg.data[sof + 7] = 60000 >> 8, jpeg.data[sof + 8] = 60000 & 0xff;
    check_rejected(jpeg.data, jpeg.len, TL_ERR_LIMIT, "exceeds the limit");
    free(jpeg.data);
}

TEST(huge_webp_header_hits_limit) {
    const char *fourccs[1] = {"VP8X"};
    byte_buf payload = vp8x_payload(0, 100000, 100000);
    byte_buf file = riff_webp(fourccs, &payload, 1);
    check_rejected(file.data, file.len, TL_ERR_LIMIT, "exceeds the limit");
    /* a VP8L bitstream header declaring 16384 x 16384, the most its 14-bit fields hold */
    uint8_t vp8l[] = {'R', 'I', 'F', 'F', 18, 0, 0, 0,    'W',  'E',  'B',  'P',  'V',
                      'P', '8', 'L', 5,   0,  0, 0, 0x2f, 0xff, 0xff, 0xff, 0x0f, 0};
    check_rejected(vp8l, sizeof vp8l, TL_ERR_LIMIT, "exceeds the limit");
    free(payload.data);
    free(file.data);
}

TEST(max_pixels_option_applies) {
    byte_buf png = sample_png(); /* 24 x 20 = 480 pixels */
    tl_image img;
    tl_error err;
    img_decode_opts small = {479, 1}, exact = {480, 1};
    CHECK(img_decode(png.data, png.len, &small, &img, &err) == TL_ERR_LIMIT);
    CHECK(img_decode(png.data, png.len, &exact, &img, &err) == TL_OK);
    img_free(&img);
    free(png.data);
}

TEST(missing_file_is_io_error) {
    tl_image img;
    tl_error err;
    CHECK(img_load_file("/nonexistent/tailor/x.png", NULL, &img, &err) == TL_ERR_IO);
    CHECK(message_has(&err, "/nonexistent/tailor/x.png"));
    CHECK(img_load_file(th_testdata(), NULL, &img, &err) == TL_ERR_IO); /* a directory */
    CHECKF(message_has(&err, "regular file"), "%s", err.message);
}

/* ---- resize and preprocessing arguments ---- */

TEST(resize_same_size_copies_and_bad_sizes_fail) {
    uint8_t px[PN * 3];
    noise_rgb(px, sizeof px, 5u);
    tl_image in = {PW, PH, px}, out;
    tl_error err;
    REQUIRE(img_resize_bicubic(&in, PW, PH, &out, &err) == TL_OK);
    CHECK(memcmp(out.rgb, px, sizeof px) == 0);
    img_free(&out);
    CHECK(img_resize_bicubic(&in, 0, 4, &out, &err) == TL_ERR_INVALID);
    CHECK(out.rgb == NULL);
    float pv[3 * 4 * 4];
    CHECK(img_clip_preprocess(&in, 0, IMG_CLIP_MEAN, IMG_CLIP_STD, pv, &err) == TL_ERR_INVALID);
}

TEST(clip_preprocess_is_crop_of_full_resize) {
    enum { W = 57, H = 23, S = 16 };
    uint8_t px[W * H * 3];
    noise_rgb(px, sizeof px, 11u);
    tl_image in = {W, H, px}, full;
    tl_error err;
    int rw, rh, left, top;
    img_clip_resize_dims(W, H, S, &rw, &rh);
    img_clip_crop_origin(rw, rh, S, &left, &top);
    CHECK(rw == 39 && rh == 16 && left == 11 && top == 0); /* int(16 * 57 / 23) = 39 */
    REQUIRE(img_resize_bicubic(&in, rw, rh, &full, &err) == TL_OK);
    float pv[3 * S * S];
    REQUIRE(img_clip_preprocess(&in, S, IMG_CLIP_MEAN, IMG_CLIP_STD, pv, &err) == TL_OK);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                uint8_t u = full.rgb[((y + top) * rw + x + left) * 3 + c];
                float want = ((float)(u * (1.0 / 255.0)) - IMG_CLIP_MEAN[c]) / IMG_CLIP_STD[c];
                bad += pv[(c * S + y) * S + x] != want;
            }
    CHECK(bad == 0);
    img_free(&full);
}

TEST(clip_preprocess_refuses_elongated_images) {
    enum { H = 200000, S = 16384 }; /* the long side would become 16384 * 200000 > INT_MAX */
    uint8_t *px = calloc((size_t)H * 3, 1);
    tl_image in = {1, H, px};
    tl_error err;
    int rw, rh;
    REQUIRE(px);
    img_clip_resize_dims(1, H, S, &rw, &rh);
    CHECK(rw == S && rh == INT32_MAX);
    CHECK(img_clip_preprocess(&in, S, IMG_CLIP_MEAN, IMG_CLIP_STD, NULL, &err) == TL_ERR_LIMIT);
    CHECKF(message_has(&err, "elongated"), "%s", err.message);
    free(px);
}

int main(void) {
    RUN(clip_tiny_reference_images);
    RUN(tailor_tiny_reference_images);
    RUN(png_grey_is_replicated);
    RUN(png_low_bit_grey_is_scaled);
    RUN(png_grey_alpha_drops_alpha);
    RUN(png_palette_with_trns_looks_up_colours);
    RUN(png_rgba_drops_alpha);
    RUN(png_16bit_rgb_keeps_high_byte);
    RUN(png_16bit_grey_keeps_high_byte);
    RUN(png_interlaced_round_trips);
    RUN(webp_lossless_round_trips);
    RUN(webp_exif_orientation_rotates);
    RUN(webp_animated_is_refused);
    RUN(jpeg_exif_orientation_6_rotates_clockwise);
    RUN(jpeg_exif_other_orientations);
    RUN(exif_offsets_outside_segment_are_ignored);
    RUN(jpeg_cmyk_converts_like_pil);
    RUN(empty_buffer_is_rejected);
    RUN(unknown_format_is_rejected);
    RUN(truncated_jpeg_is_rejected);
    RUN(corrupted_jpeg_is_rejected);
    RUN(truncated_png_is_rejected);
    RUN(png_with_bad_crc_is_rejected);
    RUN(truncated_webp_is_rejected);
    RUN(huge_png_header_hits_limit);
    RUN(huge_jpeg_header_hits_limit);
    RUN(huge_webp_header_hits_limit);
    RUN(max_pixels_option_applies);
    RUN(missing_file_is_io_error);
    RUN(resize_same_size_copies_and_bad_sizes_fail);
    RUN(clip_preprocess_is_crop_of_full_resize);
    RUN(clip_preprocess_refuses_elongated_images);
    return th_done();
}
