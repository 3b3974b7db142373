/* The starting checkpoint of a model trained from scratch (model.init null): a HF CLIPConfig
 * for the configured sizes and the tokenizer's vocabulary, and CLIP weights initialised as HF's
 * CLIPModel._init_weights does (normal with its standard deviations, LayerNorms identity, biases
 * zero, logit_scale 2.6592). Not for: the FAME-ViL parts (init.h) or loading (train_model.h). */
#ifndef TL_TRAINER_TRAIN_SCRATCH_H
#define TL_TRAINER_TRAIN_SCRATCH_H

#include <stdint.h>

#include "error.h"
#include "train_config.h"

/* Writes dir/config.json (sizes from cfg->model, vocab_size vocab) and dir/model.safetensors
 * (random CLIP weights from cfg->seed); dir must exist. */
tl_status train_scratch_write(const train_config *cfg, int vocab, const char *dir, tl_error *err);

#endif
