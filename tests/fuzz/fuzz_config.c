/* libFuzzer target for checkpoint configuration parsing: arbitrary bytes as JSON through
 * clip_config_from_json and, on the same object, clip_config_read_preprocessor. Every accepted
 * config must satisfy the invariants the engine relies on (positive sizes, heads dividing the
 * width, patches tiling the image). */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

static void check_tower(const clip_tower_config *t) {
    if (t->hidden_size < 1 || t->num_attention_heads < 1 || t->num_hidden_layers < 1 ||
        t->intermediate_size < 1 || !(t->layer_norm_eps > 0) ||
        t->hidden_size % t->num_attention_heads)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!root) return 0;
    clip_config cfg;
    tl_error err;
    if (clip_config_from_json(&cfg, root, &err) == TL_OK) {
        check_tower(&cfg.text.tower);
        check_tower(&cfg.vision.tower);
        if (cfg.vision.image_size % cfg.vision.patch_size || cfg.projection_dim < 1) abort();
        clip_config_read_preprocessor(&cfg, root, &err);
        if (!(cfg.image_std[0] > 0 && cfg.image_std[1] > 0 && cfg.image_std[2] > 0)) abort();
        clip_config_free(&cfg);
    }
    json_decref(root);
    return 0;
}
