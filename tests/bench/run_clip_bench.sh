#!/usr/bin/env bash
# Runs the CLIP benchmark: the Tailor engine (bench_clip) and the PyTorch baseline
# (bench_torch.py) on the same random ViT-B/16 checkpoint, one after the other, and prints both.
# The checkpoint is generated once into a cache directory. Run it on a quiet machine.
#   tests/bench/run_clip_bench.sh [--build DIR] [--threads N] [--repeats N] [--preset P]
#                                 [--model DIR] [--json-dir DIR]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="$root/build"
threads=2
repeats=5
preset=vit-b16
model=""
json_dir=""
python=/usr/bin/python3   # Debian's python3-torch lives in the system interpreter

usage() { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --json-dir) json_dir=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_clip_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

cache="${TL_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tailor-bench}"
model="${model:-$cache/$preset}"
if [[ ! -x "$build/tests/bench/make_random_clip" ]]; then
  echo "run_clip_bench: $build/tests/bench/make_random_clip is missing;" \
    "run: meson compile -C $build" >&2
  exit 1
fi
if [[ ! -f "$model/model.safetensors" ]]; then
  echo "run_clip_bench: generating a random $preset checkpoint in $model"
  mkdir -p "$(dirname "$model")"
  "$build/tests/bench/make_random_clip" "$model" --preset "$preset" --vocab "$root/model/vocab"
fi

json_args() { if [[ -n "$json_dir" ]]; then printf -- '--json\n%s\n' "$json_dir/$1.json"; fi; }
if [[ -n "$json_dir" ]]; then mkdir -p "$json_dir"; fi

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "== tailor engine"
mapfile -t engine_json < <(json_args tailor)
if [[ -x "$build/tests/bench/bench_clip" ]]; then
  OPENBLAS_NUM_THREADS=$threads "$build/tests/bench/bench_clip" "$model" --threads "$threads" \
    --repeats "$repeats" "${engine_json[@]}"
else
  echo "(not run: $build/tests/bench/bench_clip is not built; it needs the engine in model_dep)"
fi
echo
echo "== pytorch baseline"
mapfile -t torch_json < <(json_args torch)
OMP_NUM_THREADS=$threads "$python" "$root/tests/bench/bench_torch.py" "$model" \
  --threads "$threads" --repeats "$repeats" "${torch_json[@]}"
