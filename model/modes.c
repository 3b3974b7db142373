/* The per-layer step order of the fusion and generative modes (MODEL.md §2), shared by
 * inference and training. Not for: the steps (towers.c, train_tasks.c supply them). */
#include "modes.h"

tl_status mode_fusion_layer(const mode_steps *steps, void *ctx, int l) {
    tl_status st = steps->attn(ctx, MODE_VISION, l);
    if (!st) st = steps->attn(ctx, MODE_TEXT, l);
    if (!st) st = steps->mlp_tsa(ctx, MODE_VISION, l);
    if (!st) st = steps->xaa(ctx, MODE_VISION, l);
    if (!st) st = steps->mlp_tsa(ctx, MODE_TEXT, l);
    if (!st) st = steps->xaa(ctx, MODE_TEXT, l);
    return st;
}

tl_status mode_generative_layer(const mode_steps *steps, void *ctx, int l) {
    tl_status st = steps->attn(ctx, MODE_TEXT, l);
    if (!st) st = steps->mlp_tsa(ctx, MODE_TEXT, l);
    if (!st) st = steps->xaa(ctx, MODE_TEXT, l);
    return st;
}
