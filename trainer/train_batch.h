/* One training step's inputs from a data set (MODEL.md §2–3): images decoded and CLIP-preprocessed,
 * texts tokenized into rows of one stride (the batch's longest, ≤ context), SCR labels mapped to
 * the checkpoint's classes, and per-turn inputs of multi-turn transactions.
 * Not for: choosing which samples (train_loop.c) or running the model. */
#ifndef TL_TRAINER_TRAIN_BATCH_H
#define TL_TRAINER_TRAIN_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "tokenizer.h"
#include "train_config.h"

/* Where a task's batches come from (everything borrowed). */
typedef struct batch_source {
    const dataset *ds;
    const tl_tokenizer *tok;
    int image_size, context;
    const int *class_of_label; /* scr: ds label index → model class; NULL for other tasks */
} batch_source;

/* What train_batch_build fills, per task:
 * xmr, fic: pixels [B] of the items, ids [B, stride] one caption each;
 * scr: pixels, ids (the title, else the first text) and labels [B];
 * tgir: pixels [B] references, ids the relative captions, target_pixels [B];
 * multiturn: turns T (the batch's shortest transaction), pixels [T, B] references per turn,
 * ids [T, B, stride] their captions, target_pixels [B] the final targets. */
typedef struct train_batch {
    int B, turns, stride;
    float *pixels, *target_pixels;
    int32_t *ids;
    int *labels;
} train_batch;

/* The number of samples the task draws from ds: items (xmr, scr, fic), triplets (tgir) or
 * transactions (multiturn). */
size_t train_batch_pool_size(const dataset *ds, int task);

/* Builds the batch of task from the samples idx[0..B) (indices of items, triplets or
 * transactions; an scr item without a label is an error naming it); pick[b] chooses among a
 * sample's captions (taken modulo their count). On success free b with train_batch_free. */
tl_status train_batch_build(train_batch *b, const batch_source *src, int task, const size_t *idx,
                            const uint32_t *pick, int B, tl_error *err);

void train_batch_free(train_batch *b);

#endif
