/* Fresh FAME-ViL parts for training from a plain CLIP checkpoint (MODEL.md §2–3 init): adapters
 * start as exactly zero functions (W_up = 0, b_up = 0, s = 1), Linear layers as PyTorch's
 * defaults, norms as identity, σ's at 4. Not for: loading (model/train_model.h). */
#ifndef TL_TRAINER_INIT_H
#define TL_TRAINER_INIT_H

#include <stdint.h>

#include "train_model.h"

/* Initialises every tensor of the parts whose bit (1 << part) is set in parts (never the CLIP
 * part), deterministically from seed; each part draws from its own RNG stream. Tensors the
 * table does not know are TL_ERR_INVALID naming them. */
tl_status train_model_init_parts(train_model *m, unsigned parts, uint64_t seed, tl_error *err);

#endif
