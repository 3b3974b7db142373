#!/usr/bin/env bash
# The README's first command: installs system packages, builds Tailor, prepares the demo model
# (Fashion-MNIST Colours data + training from scratch, with a progress bar; skipped when
# var/demo/model exists) and its catalogue index, then runs tailord on 127.0.0.1:8080 with the
# demo shop page at http://127.0.0.1:8080/. Ctrl-C (SIGINT) or SIGTERM stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/setup.sh
[[ -f build/build.ninja ]] || meson setup build
meson compile -C build

deploy/prepare_demo.sh build
# (Re)built when missing or older than the model: an index serves only the model it was made with.
if [[ ! -f var/demo/index/manifest.json ||
      var/demo/model/model.safetensors -nt var/demo/index/manifest.json ]]; then
  echo "building the demo catalogue index in var/demo/index"
  build/cli/tailor index build --model var/demo/model --catalog var/demo/data/catalogue.jsonl \
    --out var/demo/index
fi

echo "tailord: the demo shop is at http://127.0.0.1:8080/"
exec build/server/tailord --listen 127.0.0.1 --port 8080 --model_dir var/demo/model \
  --index_dir var/demo/index "$@"
