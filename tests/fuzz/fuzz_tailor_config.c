/* libFuzzer target for config.json's "tailor" object (MODEL.md §5): the input is parsed as JSON;
 * a full config.json (an object with "text_config") is used as it is, any other value becomes
 * "tailor" of the tailor-tiny config. It then goes through clip_config_from_json,
 * tailor_params_load and ntm_config_parse, binding against tailor-tiny's tensors when
 * TL_TESTDATA is set (else an empty tensor file). Not for: the CLIP fields (fuzz_config.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ntm.h"
#include "tailor_params.h"

static const char BASE_CONFIG[] =
    "{\"projection_dim\": 32, \"text_config\": {\"vocab_size\": 512, \"hidden_size\": 48, "
    "\"intermediate_size\": 192, \"num_hidden_layers\": 2, \"num_attention_heads\": 3, "
    "\"max_position_embeddings\": 77, \"hidden_act\": \"quick_gelu\", \"layer_norm_eps\": 1e-05, "
    "\"bos_token_id\": 510, \"eos_token_id\": 511, \"pad_token_id\": 0}, \"vision_config\": "
    "{\"hidden_size\": 64, \"intermediate_size\": 256, \"num_hidden_layers\": 2, "
    "\"num_attention_heads\": 4, \"num_channels\": 3, \"image_size\": 32, \"patch_size\": 16, "
    "\"hidden_act\": \"quick_gelu\", \"layer_norm_eps\": 1e-05}}";

/* tailor-tiny's model.safetensors when TL_TESTDATA names the test data, else a file with no
 * tensors; opened once and kept for the whole run. */
static st_file *tensors(void) {
    static st_file *st;
    static const char empty[] = {2, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    if (st) return st;
    const char *dir = getenv("TL_TESTDATA");
    char path[4096];
    snprintf(path, sizeof path, "%s/tailor-tiny/model.safetensors", dir ? dir : "");
    if (!dir || st_open(&st, path, NULL) != TL_OK) st_open_memory(&st, empty, sizeof empty, NULL);
    return st;
}

static json_t *config_root(const uint8_t *data, size_t size) {
    json_t *input = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!input || json_object_get(input, "text_config")) return input;
    json_t *root = json_loads(BASE_CONFIG, 0, NULL);
    if (!root) abort();
    json_object_set_new(root, "tailor", input);
    return root;
}

static void check_params(const tailor_params *p) {
    if (p->adapter_dim < 1 || p->xaa_dim < 1 || p->scr_classes < 0) abort();
    if (p->scr_classes && !p->scr_labels) abort();
    for (int i = 0; i < p->scr_classes; i++)
        if (!p->scr_labels[i] || !p->scr_labels[i][0]) abort();
}

static void check_ntm(const clip_config *cfg) {
    const json_t *ntm = cfg->tailor ? json_object_get(cfg->tailor, "ntm") : NULL;
    if (!ntm) return;
    ntm_config nc;
    tl_error err;
    if (ntm_config_parse(&nc, ntm, cfg->projection_dim, &err) != TL_OK) return;
    if (nc.blocks < 1 || nc.slots < 1 || nc.width < 1 || nc.hidden < 1 || !ntm_state_floats(&nc))
        abort();
    bool present;
    ntm_tensors_detect(tensors(), &nc, &present, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    json_t *root = config_root(data, size);
    if (!root) return 0;
    clip_config cfg;
    tl_error err;
    if (clip_config_from_json(&cfg, root, &err) == TL_OK) {
        tailor_params *p;
        if (tailor_params_load(&p, &cfg, tensors(), &err) == TL_OK) {
            check_params(p);
            tailor_params_free(p);
        } else if (!err.message[0]) {
            abort(); /* every failure names its problem */
        }
        check_ntm(&cfg);
        clip_config_free(&cfg);
    }
    json_decref(root);
    return 0;
}
