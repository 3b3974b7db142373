/* The training loop of `tailor-train train` (MODEL.md §2–3, §5): one sampled task per step,
 * its batch, the task's training step (with a frozen teacher's distillation term when
 * configured), gradient clipping, AdamW at the scheduled rate, metrics and progress, and
 * atomic checkpoints from which --resume continues bit for bit.
 * Not for: parsing the configuration (train_config.h) or the forwards (model/train_tasks.h). */
#ifndef TL_TRAINER_TRAIN_LOOP_H
#define TL_TRAINER_TRAIN_LOOP_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "train_config.h"

/* A run directory's checkpoint: OUTPUT_DIR/checkpoint holds config.json (with the "tailor"
 * object), model.safetensors, the tokenizer files of the initial checkpoint,
 * trainer_state.safetensors (AdamW moments and step) and loop_state.safetensors ("step",
 * "task_cursor" and "task_epoch": where each task's epoch permutation stands). */
#define TRAIN_CHECKPOINT_DIR "checkpoint"
#define TRAIN_LOOP_STATE     "loop_state.safetensors"
/* With a multiturn task, OUTPUT_DIR/ntm-features holds the weights (no optimiser state) that
 * compute the CM-NTM's inputs, refreshed at step 0 and at every checkpoint_interval. */
#define TRAIN_FEATURES_DIR "ntm-features"
/* Without model.init, OUTPUT_DIR/init holds the random starting weights (train_scratch.h). */
#define TRAIN_SCRATCH_DIR "init"
/* Evaluation (tasks[].eval_dataset, every eval.interval steps and at the last step) runs
 * eval_run on a snapshot of the weights in OUTPUT_DIR/eval-model. */
#define TRAIN_EVAL_DIR "eval-model"

typedef struct train_run_options {
    int resume;        /* continue from OUTPUT_DIR/checkpoint */
    int64_t stop_step; /* > 0: stop (with a checkpoint) once this many steps are done; the
                          schedule still spans the config's steps */
    FILE *progress;    /* where the progress line goes; NULL: none */
} train_run_options;

/* Runs the training cfg describes: mode multitask writes cfg->output.dir, mode teachers one
 * single-task run per task into output.dir/teacher-TASK. Errors name the file, key or step. */
tl_status train_run(const train_config *cfg, const train_run_options *opt, tl_error *err);

#endif
