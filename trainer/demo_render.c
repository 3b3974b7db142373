/* Fashion-MNIST Colours rendering (see demo_render.h): bilinear upscale of the intensities in
 * 8.8 fixed point, a soft garment mask from low intensities, the (colour, shade) tint
 * modulated by the intensity so the garment keeps its texture, and stripes or dots in a
 * contrasting tone of the same colour. */
#include "demo_render.h"

#include "fashion_mnist.h"

#define MASK_LOW       12  /* intensities at or below: background */
#define MASK_HIGH      60  /* at or above: fully garment */
#define TEXTURE_FLOOR  160 /* the darkest garment pixel keeps 160/255 of the tint */
#define STRIPE_PERIOD  8
#define STRIPE_WIDTH   3 /* marks cover well under half the garment, so the tint shows its shade */
#define DOT_PERIOD     8
#define DOT_RADIUS2_X4 10 /* (2r)^2 in doubled pixel coordinates: round dots 4 px wide */

static const uint8_t BACKGROUND[3] = {240, 240, 240};

/* Tint per colour (DEMO_COLOUR_NAMES order) and shade: light, dark. Chosen so that all 20
 * tints stay distinguishable from one another at 64x64. */
static const uint8_t PALETTE[DEMO_N_COLOURS][DEMO_N_SHADES][3] = {
    {{240, 120, 120}, {165, 25, 30}},  /* red */
    {{255, 185, 110}, {215, 100, 10}}, /* orange */
    {{255, 235, 120}, {205, 170, 0}},  /* yellow */
    {{140, 215, 130}, {30, 120, 45}},  /* green */
    {{120, 215, 205}, {0, 115, 115}},  /* teal */
    {{130, 170, 245}, {25, 55, 160}},  /* blue */
    {{195, 150, 230}, {95, 35, 140}},  /* purple */
    {{255, 170, 210}, {215, 50, 135}}, /* pink */
    {{200, 150, 105}, {110, 65, 30}},  /* brown */
    {{190, 190, 190}, {85, 85, 85}},   /* grey */
};

/* Bilinear sample of the 28x28 garment at output pixel (x, y), pixel centres aligned. */
static int upscaled_intensity(const uint8_t *garment, int x, int y) {
    const int scale = 256 * FMNIST_SIDE / DEMO_IMAGE_SIDE;
    int sx = ((2 * x + 1) * scale) / 2 - 128, sy = ((2 * y + 1) * scale) / 2 - 128;
    if (sx < 0) sx = 0;
    if (sy < 0) sy = 0;
    int x0 = sx >> 8, y0 = sy >> 8, fx = sx & 255, fy = sy & 255;
    int x1 = x0 + 1 < FMNIST_SIDE ? x0 + 1 : x0, y1 = y0 + 1 < FMNIST_SIDE ? y0 + 1 : y0;
    const uint8_t *r0 = garment + y0 * FMNIST_SIDE, *r1 = garment + y1 * FMNIST_SIDE;
    int top = r0[x0] * (256 - fx) + r0[x1] * fx;
    int bottom = r1[x0] * (256 - fx) + r1[x1] * fx;
    return (top * (256 - fy) + bottom * fy + (1 << 15)) >> 16;
}

static int mask_alpha(int intensity) {
    if (intensity <= MASK_LOW) return 0;
    if (intensity >= MASK_HIGH) return 255;
    return (intensity - MASK_LOW) * 255 / (MASK_HIGH - MASK_LOW);
}

static int pattern_covers(demo_pattern pattern, int x, int y) {
    if (pattern == DEMO_STRIPED) return y % STRIPE_PERIOD < STRIPE_WIDTH;
    if (pattern != DEMO_DOTTED) return 0;
    int row = y / DOT_PERIOD, shift = (row & 1) * (DOT_PERIOD / 2);
    int dx = 2 * ((x + shift) % DOT_PERIOD) + 1 - DOT_PERIOD;
    int dy = 2 * (y % DOT_PERIOD) + 1 - DOT_PERIOD;
    return dx * dx + dy * dy <= DOT_RADIUS2_X4;
}

/* The pattern's tone: dark garments get pale marks, light garments dark ones. */
static void contrast_tone(const uint8_t *tint, demo_shade shade, uint8_t *out) {
    for (int c = 0; c < 3; c++)
        out[c] =
            shade == DEMO_DARK ? (uint8_t)((tint[c] * 2 + 255 * 3) / 5) : (uint8_t)(tint[c] / 2);
}

void demo_render_garment(const uint8_t *garment, demo_attrs attrs, uint8_t *rgb) {
    const uint8_t *tint = PALETTE[attrs.colour][attrs.shade];
    uint8_t mark[3];
    contrast_tone(tint, (demo_shade)attrs.shade, mark);
    for (int y = 0; y < DEMO_IMAGE_SIDE; y++) {
        for (int x = 0; x < DEMO_IMAGE_SIDE; x++) {
            int intensity = upscaled_intensity(garment, x, y);
            int alpha = mask_alpha(intensity);
            int texture = TEXTURE_FLOOR + (255 - TEXTURE_FLOOR) * intensity / 255;
            const uint8_t *tone = pattern_covers((demo_pattern)attrs.pattern, x, y) ? mark : tint;
            uint8_t *px = rgb + 3 * (y * DEMO_IMAGE_SIDE + x);
            for (int c = 0; c < 3; c++) {
                int fg = tone[c] * texture / 255;
                px[c] = (uint8_t)((fg * alpha + BACKGROUND[c] * (255 - alpha) + 127) / 255);
            }
        }
    }
}
