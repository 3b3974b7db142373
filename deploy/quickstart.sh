#!/usr/bin/env bash
# The README's first command: installs system packages, builds Tailor, prepares the example
# checkpoint and runs the main job: `tailor embed` on the shipped example images and texts.
# The example checkpoint is a small CLIP with RANDOM weights (real CLIP vocabulary): it shows
# the whole pipeline working; its embeddings carry no meaning until the trainer's demo model
# replaces it.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/setup.sh
[[ -f build/build.ninja ]] || meson setup build
meson compile -C build

model=build/example-model
if [[ ! -f $model/model.safetensors ]]; then
  build/tests/bench/make_random_clip "$model" --preset tiny --seed 1 --vocab model/vocab
fi

build/cli/tailor embed --model "$model" \
  --text "a red summer dress" --text "navy blazer with gold buttons" \
  --image examples/images/a_dress_40x56.png --image examples/images/b_blazer_64x48.png "$@"
