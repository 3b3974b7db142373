/* Parsing and validation of HF CLIPConfig / CLIPImageProcessor JSON, table-driven: one table
 * row per key with its default and bounds. Not for: the "tailor" object's contents (the
 * adapter/head parsers read cfg->tailor). */
#include "config.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "image.h"

/* Upper bounds that keep every derived size far from overflow. */
enum {
    MAX_WIDTH = 1 << 14,
    MAX_LAYERS = 256,
    MAX_POSITIONS = 1 << 14,
    MAX_VOCAB = 1 << 24,
    MAX_IMAGE_SIZE = 4096,
};

typedef struct int_key {
    const char *name;
    size_t offset; /* of the int inside the section's struct */
    int fallback;  /* HF's default */
    int min, max;
} int_key;

#define TOWER(field) offsetof(clip_tower_config, field)
static const int_key tower_keys_text[] = {
    {"hidden_size", TOWER(hidden_size), 512, 1, MAX_WIDTH},
    {"intermediate_size", TOWER(intermediate_size), 2048, 1, 4 * MAX_WIDTH},
    {"num_hidden_layers", TOWER(num_hidden_layers), 12, 1, MAX_LAYERS},
    {"num_attention_heads", TOWER(num_attention_heads), 8, 1, MAX_WIDTH},
};
static const int_key tower_keys_vision[] = {
    {"hidden_size", TOWER(hidden_size), 768, 1, MAX_WIDTH},
    {"intermediate_size", TOWER(intermediate_size), 3072, 1, 4 * MAX_WIDTH},
    {"num_hidden_layers", TOWER(num_hidden_layers), 12, 1, MAX_LAYERS},
    {"num_attention_heads", TOWER(num_attention_heads), 12, 1, MAX_WIDTH},
};
#define TEXT(field) offsetof(clip_text_config, field)
static const int_key text_keys[] = {
    {"vocab_size", TEXT(vocab_size), 49408, 2, MAX_VOCAB},
    {"max_position_embeddings", TEXT(max_position_embeddings), 77, 1, MAX_POSITIONS},
    {"bos_token_id", TEXT(bos_token_id), 49406, 0, INT_MAX},
    {"eos_token_id", TEXT(eos_token_id), 49407, 0, INT_MAX},
    {"pad_token_id", TEXT(pad_token_id), 1, 0, INT_MAX},
};
#define VISION(field) offsetof(clip_vision_config, field)
static const int_key vision_keys[] = {
    {"num_channels", VISION(num_channels), 3, 3, 3},
    {"image_size", VISION(image_size), 224, 1, MAX_IMAGE_SIZE},
    {"patch_size", VISION(patch_size), 32, 1, MAX_IMAGE_SIZE},
};

/* Reads obj[key] (section names the object in messages) into *dst, or the default. */
static tl_status read_int(const json_t *obj, const char *section, const int_key *k, int *dst,
                          tl_error *err) {
    const json_t *v = obj ? json_object_get(obj, k->name) : NULL;
    if (!v || json_is_null(v)) {
        *dst = k->fallback;
        return TL_OK;
    }
    if (!json_is_integer(v))
        return tl_fail(err, TL_ERR_FORMAT, "config.json: %s%s must be an integer", section,
                       k->name);
    json_int_t x = json_integer_value(v);
    if (x < k->min || x > k->max)
        return tl_fail(err, TL_ERR_FORMAT, "config.json: %s%s = %lld outside %d..%d", section,
                       k->name, (long long)x, k->min, k->max);
    *dst = (int)x;
    return TL_OK;
}

static tl_status read_ints(const json_t *obj, const char *section, const int_key *keys, size_t n,
                           void *base, tl_error *err) {
    for (size_t i = 0; i < n; i++) {
        tl_status st =
            read_int(obj, section, &keys[i], (int *)((char *)base + keys[i].offset), err);
        if (st) return st;
    }
    return TL_OK;
}

/* A positive number, or fallback when absent. */
static tl_status read_positive(const json_t *obj, const char *section, const char *key,
                               double fallback, float *dst, tl_error *err) {
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        *dst = (float)fallback;
        return TL_OK;
    }
    float x = json_is_number(v) ? (float)json_number_value(v) : 0.0f; /* may underflow to 0 */
    if (!(x > 0) || x > 1e30f)
        return tl_fail(err, TL_ERR_FORMAT,
                       "config.json: %s%s must be a positive number in float range", section,
                       key);
    *dst = x;
    return TL_OK;
}

static tl_status check_activation(const json_t *obj, const char *section, tl_error *err) {
    const json_t *v = obj ? json_object_get(obj, "hidden_act") : NULL;
    if (!v) return TL_OK; /* HF's default is quick_gelu */
    if (!json_is_string(v) || strcmp(json_string_value(v), "quick_gelu"))
        return tl_fail(err, TL_ERR_UNSUPPORTED,
                       "config.json: %shidden_act must be \"quick_gelu\" (the only activation "
                       "this engine runs)",
                       section);
    return TL_OK;
}

static tl_status read_tower(const json_t *obj, const char *section, const int_key *keys,
                            clip_tower_config *t, tl_error *err) {
    tl_status st = read_ints(obj, section, keys, 4, t, err);
    if (!st) st = read_positive(obj, section, "layer_norm_eps", 1e-5, &t->layer_norm_eps, err);
    if (!st) st = check_activation(obj, section, err);
    if (st) return st;
    if (t->hidden_size % t->num_attention_heads)
        return tl_fail(err, TL_ERR_FORMAT,
                       "config.json: %shidden_size %d is not divisible by "
                       "num_attention_heads %d",
                       section, t->hidden_size, t->num_attention_heads);
    return TL_OK;
}

static const json_t *section_of(const json_t *root, const char *key, tl_status *st, tl_error *err) {
    const json_t *v = json_object_get(root, key);
    if (v && !json_is_object(v)) {
        *st = tl_fail(err, TL_ERR_FORMAT, "config.json: %s must be an object", key);
        return NULL;
    }
    return v;
}

static tl_status parse_sections(clip_config *cfg, const json_t *root, tl_error *err) {
    tl_status st = TL_OK;
    const json_t *text = section_of(root, "text_config", &st, err);
    const json_t *vision = st ? NULL : section_of(root, "vision_config", &st, err);
    if (!st) st = read_tower(text, "text_config.", tower_keys_text, &cfg->text.tower, err);
    if (!st) st = read_ints(text, "text_config.", text_keys, 5, &cfg->text, err);
    if (!st) st = read_tower(vision, "vision_config.", tower_keys_vision, &cfg->vision.tower, err);
    if (!st) st = read_ints(vision, "vision_config.", vision_keys, 3, &cfg->vision, err);
    if (st) return st;
    int_key projection = {"projection_dim", 0, 512, 1, MAX_WIDTH};
    st = read_int(root, "", &projection, &cfg->projection_dim, err);
    if (!st)
        st = read_positive(root, "", "logit_scale_init_value", 2.6592, &cfg->logit_scale_init_value,
                           err);
    if (st) return st;
    if (cfg->vision.image_size % cfg->vision.patch_size)
        return tl_fail(err, TL_ERR_FORMAT,
                       "config.json: vision_config.image_size %d is not divisible by "
                       "vision_config.patch_size %d",
                       cfg->vision.image_size, cfg->vision.patch_size);
    int grid = cfg->vision.image_size / cfg->vision.patch_size;
    if (grid * grid + 1 > MAX_POSITIONS)
        return tl_fail(err, TL_ERR_FORMAT,
                       "config.json: vision_config.image_size / patch_size gives %d tokens, more "
                       "than %d",
                       grid * grid + 1, MAX_POSITIONS);
    return TL_OK;
}

tl_status clip_config_from_json(clip_config *cfg, json_t *root, tl_error *err) {
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(root))
        return tl_fail(err, TL_ERR_FORMAT, "config.json: top level must be an object");
    tl_status st = parse_sections(cfg, root, err);
    if (st) return st;
    const json_t *tailor = json_object_get(root, "tailor");
    if (tailor && !json_is_object(tailor))
        return tl_fail(err, TL_ERR_FORMAT, "config.json: tailor must be an object");
    memcpy(cfg->image_mean, IMG_CLIP_MEAN, sizeof cfg->image_mean);
    memcpy(cfg->image_std, IMG_CLIP_STD, sizeof cfg->image_std);
    cfg->crop_size = cfg->vision.image_size;
    cfg->root = json_incref(root);
    cfg->tailor = tailor;
    return TL_OK;
}

/* Reads a [3] array of numbers (std entries must be positive). */
static tl_status read_triple(const json_t *pp, const char *key, int positive, float out[3],
                             tl_error *err) {
    const json_t *v = json_object_get(pp, key);
    if (!v) return TL_OK;
    if (!json_is_array(v) || json_array_size(v) != 3)
        return tl_fail(err, TL_ERR_FORMAT, "preprocessor_config.json: %s must be 3 numbers", key);
    for (size_t i = 0; i < 3; i++) {
        const json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || (positive && !(json_number_value(x) > 0)))
            return tl_fail(err, TL_ERR_FORMAT,
                           "preprocessor_config.json: %s[%zu] must be a %snumber", key, i,
                           positive ? "positive " : "");
        out[i] = (float)json_number_value(x);
    }
    return TL_OK;
}

/* A size given as an integer or as an object holding `field` (e.g. {"shortest_edge": 224});
 * it must equal the model's image size, the only geometry this engine preprocesses. */
static tl_status check_size(const json_t *pp, const char *key, const char *field, int expected,
                            tl_error *err) {
    const json_t *v = json_object_get(pp, key);
    if (json_is_object(v)) v = json_object_get(v, field);
    if (!v || json_is_null(v)) return TL_OK;
    if (!json_is_integer(v) || json_integer_value(v) != expected)
        return tl_fail(err, TL_ERR_UNSUPPORTED,
                       "preprocessor_config.json: %s must equal vision_config.image_size %d", key,
                       expected);
    return TL_OK;
}

tl_status clip_config_read_preprocessor(clip_config *cfg, const json_t *pp, tl_error *err) {
    if (!json_is_object(pp))
        return tl_fail(err, TL_ERR_FORMAT, "preprocessor_config.json: top level must be an object");
    tl_status st = read_triple(pp, "image_mean", 0, cfg->image_mean, err);
    if (!st) st = read_triple(pp, "image_std", 1, cfg->image_std, err);
    if (!st) st = check_size(pp, "crop_size", "height", cfg->crop_size, err);
    if (!st) st = check_size(pp, "size", "shortest_edge", cfg->crop_size, err);
    return st;
}

/* Loads a JSON file; *out owned by the caller. Missing file: TL_ERR_NOT_FOUND. */
static tl_status load_json(const char *path, json_t **out, tl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tl_fail(err, TL_ERR_NOT_FOUND, "%s: cannot open", path);
    json_error_t je;
    *out = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    if (!*out) return tl_fail(err, TL_ERR_FORMAT, "%s:%d: %s", path, je.line, je.text);
    return TL_OK;
}

tl_status clip_config_load_dir(clip_config *cfg, const char *dir, tl_error *err) {
    memset(cfg, 0, sizeof *cfg);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *root = NULL;
    tl_status st = load_json(path, &root, err);
    if (st) return st;
    st = clip_config_from_json(cfg, root, err);
    json_decref(root);
    if (st) return st;
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    json_t *pp = NULL;
    st = load_json(path, &pp, err);
    if (st == TL_ERR_NOT_FOUND) return TL_OK;
    if (!st) {
        st = clip_config_read_preprocessor(cfg, pp, err);
        json_decref(pp);
    }
    if (st) clip_config_free(cfg);
    return st;
}

void clip_config_free(clip_config *cfg) {
    if (!cfg) return;
    json_decref(cfg->root);
    memset(cfg, 0, sizeof *cfg);
}
