#!/usr/bin/env bash
# The demo model: generates the Fashion-MNIST Colours data (tailor-train demo-data), trains the
# small FAME-ViL model of trainer/configs/demo.json from scratch with a progress bar, and leaves
# the checkpoint in var/demo/model. Skips the work already done: an existing var/demo/model is
# kept, existing data is reused, and an interrupted training resumes from its last checkpoint.
# usage: deploy/prepare_demo.sh [BUILD_DIR]   (default build; the daemon's quickstart calls it)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
train=$build/trainer/tailor-train
demo=var/demo
model=$demo/model

if [[ -f $model/model.safetensors && -f $model/config.json ]]; then
  echo "demo model present: $model"
  exit 0
fi
[[ -x $train ]] || { echo "prepare_demo.sh: $train not built (meson compile -C $build)" >&2; exit 1; }
mkdir -p "$demo"
if [[ ! -f $demo/data/dataset.json ]]; then
  echo "generating the demo data in $demo/data"
  "$train" demo-data --out "$demo/data"
fi
# The config reads its paths relative to itself: data, vocab (the shipped CLIP tokenizer), run.
cp trainer/configs/demo.json "$demo/train.json"
rm -rf "$demo/vocab" && cp -r model/vocab "$demo/vocab"
resume=()
[[ -f $demo/run/checkpoint/loop_state.safetensors ]] && resume=(--resume)
echo "training the demo model (trainer/configs/demo.json; metrics in $demo/run/metrics.jsonl)"
"$train" train "$demo/train.json" "${resume[@]}"
rm -rf "$model.tmp"
cp -r "$demo/run/checkpoint" "$model.tmp"
rm -f "$model.tmp"/trainer_state.safetensors "$model.tmp"/loop_state.safetensors
mv "$model.tmp" "$model"
echo "demo model written: $model"
