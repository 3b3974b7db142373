/* A checkpoint's configuration: HF CLIPConfig (config.json) with HF's defaults for missing keys,
 * validated, plus the image preprocessing of preprocessor_config.json. The raw "tailor" object
 * stays available for the adapter/head/NTM parsers. Not for: tensors (clip.c binds those). */
#ifndef TL_CONFIG_H
#define TL_CONFIG_H

#include <jansson.h>

#include "error.h"

typedef struct clip_tower_config {
    int hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
    float layer_norm_eps;
} clip_tower_config;

typedef struct clip_text_config {
    clip_tower_config tower;
    int vocab_size, max_position_embeddings;
    int bos_token_id, eos_token_id, pad_token_id;
} clip_text_config;

typedef struct clip_vision_config {
    clip_tower_config tower;
    int num_channels, image_size, patch_size;
} clip_vision_config;

typedef struct clip_config {
    clip_text_config text;
    clip_vision_config vision;
    int projection_dim;
    float logit_scale_init_value;
    /* preprocessing (preprocessor_config.json, else CLIP's) */
    float image_mean[3], image_std[3];
    int crop_size;        /* = vision.image_size */
    json_t *root;         /* the whole config.json, owned */
    const json_t *tailor; /* root["tailor"] (borrowed from root) or NULL */
} clip_config;

/* Parses a config.json object (borrowed; a reference is taken). Missing keys take HF's
 * defaults; bad values are TL_ERR_FORMAT naming the key. On success free with
 * clip_config_free. */
tl_status clip_config_from_json(clip_config *cfg, json_t *root, tl_error *err);

/* Applies a preprocessor_config.json object (borrowed): image_mean/std, and crop_size/size,
 * which must equal the model's image size. Errors are TL_ERR_FORMAT / TL_ERR_UNSUPPORTED
 * naming the key; cfg is unchanged on error only in the keys not yet read. */
tl_status clip_config_read_preprocessor(clip_config *cfg, const json_t *pp, tl_error *err);

/* Reads DIR/config.json and, when present, DIR/preprocessor_config.json. Missing config.json
 * is TL_ERR_NOT_FOUND. On success free with clip_config_free. */
tl_status clip_config_load_dir(clip_config *cfg, const char *dir, tl_error *err);

void clip_config_free(clip_config *cfg);

#endif
