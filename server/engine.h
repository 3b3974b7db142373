/* The served pair, model + catalogue, as one reference-counted unit so a reload swaps both
 * at once: requests and batches hold a reference while they use it, and the old pair is freed
 * when its last user lets go. Not for: queueing work (batcher.h). */
#ifndef TAILORD_ENGINE_H
#define TAILORD_ENGINE_H

#include <jansson.h>

#include "ntm.h"
#include "search_service.h"
#include "tailor_model.h"

typedef struct engine {
    tl_model *model; /* used only by the batcher thread */
    search_service *search;
    ntm_weights ntm;  /* session memory: the zero-shot decayed sum until the engine exposes
                         a checkpoint's ntm.* tensors */
    json_t *info;     /* model, index and load details for /v1/info */
    char version[24]; /* embedding version: identifies the model weights served */
    int refs;         /* guarded by the holder's lock (engine_slot) */
} engine;

/* Loads model_dir and index_dir; sessions use a decayed sum with session_decay. *out has one
 * reference (the caller's). */
tl_status engine_load(engine **out, const char *model_dir, const char *index_dir, int threads,
                      size_t max_pixels, double session_decay, tl_error *err);

/* The slot holding the engine being served; swaps are atomic with respect to acquire. */
typedef struct engine_slot engine_slot;
engine_slot *engine_slot_create(void);
void engine_slot_free(engine_slot *slot);
/* Takes a reference to the served engine (NULL when none is loaded). */
engine *engine_acquire(engine_slot *slot);
void engine_release(engine_slot *slot, engine *e);
/* Serves next (its reference moves into the slot) and drops the slot's reference to the
 * previous engine. */
void engine_slot_swap(engine_slot *slot, engine *next);

#endif
