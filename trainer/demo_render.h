/* Draws one Fashion-MNIST Colours product image: a 28x28 Fashion-MNIST garment upscaled to
 * DEMO_IMAGE_SIDE pixels, tinted with a (colour, shade) and patterned inside the garment
 * on a neutral light background. Integer arithmetic only, so the pixels are identical on every
 * platform. Not for: writing files (demo_data.c does that). */
#ifndef TL_TRAINER_DEMO_RENDER_H
#define TL_TRAINER_DEMO_RENDER_H

#include <stdint.h>

#include "demo_data.h"

/* garment is [28, 28] Fashion-MNIST intensities; rgb receives [DEMO_IMAGE_SIDE,
 * DEMO_IMAGE_SIDE, 3], caller-owned. attrs must be in range. */
void demo_render_garment(const uint8_t *garment, demo_attrs attrs, uint8_t *rgb);

#endif
