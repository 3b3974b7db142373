#!/usr/bin/env bash
# Runs the training-step benchmark: the Tailor engine (bench_train --task xmr) and the PyTorch
# baseline (bench_torch_train.py, AdamW per-tensor and foreach) on the same random checkpoint with
# adapters, batch 8, one after the other; prints all and the ratios PyTorch / engine. Quiet machine.
#   tests/bench/run_train_bench.sh [--build DIR] [--threads N] [--steps N] [--preset P]
#                                  [--model DIR]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="$root/build"
threads=2
steps=5
preset=vit-b16
model=""
batch=8
text_len=16
python=/usr/bin/python3   # Debian's python3-torch lives in the system interpreter

usage() { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_train_bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

cache="${TL_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tailor-bench}"
model="${model:-$cache/$preset-adapters}"
for exe in make_random_clip bench_train; do
  if [[ ! -x "$build/tests/bench/$exe" ]]; then
    echo "run_train_bench: $build/tests/bench/$exe is missing; run: meson compile -C $build" >&2
    exit 1
  fi
done
if [[ ! -f "$model/model.safetensors" ]]; then
  echo "run_train_bench: generating a random $preset checkpoint with adapters in $model"
  mkdir -p "$(dirname "$model")"
  "$build/tests/bench/make_random_clip" "$model" --preset "$preset" --adapters 64 \
    --vocab "$root/model/vocab"
fi

# Seconds per step from a "... forward+backward median X s (min M), adamw median Y s" line.
step_seconds() {
  sed -n 's/.*forward+backward median \([0-9.]*\) s .*adamw median \([0-9.]*\) s.*/\1 \2/p' |
    awk '{ printf "%.6f\n", $1 + $2 }'
}

echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "== tailor engine"
engine_out=$(OPENBLAS_NUM_THREADS=$threads "$build/tests/bench/bench_train" "$model" --task xmr \
  --batch "$batch" --steps "$steps" --threads "$threads" --text-len "$text_len")
echo "$engine_out"
echo
# PyTorch twice: AdamW's default per-tensor loop on CPU, and its multi-tensor (foreach) update.
torch_step() {
  OMP_NUM_THREADS=$threads "$python" "$root/tests/bench/bench_torch_train.py" "$model" \
    --batch "$batch" --steps "$steps" --threads "$threads" --text-len "$text_len" "$@"
}
echo "== pytorch baseline, AdamW per-tensor (torch's default)"
torch_out=$(torch_step)
echo "$torch_out"
echo
echo "== pytorch baseline, AdamW foreach"
foreach_out=$(torch_step --foreach)
echo "$foreach_out"
echo
engine_s=$(step_seconds <<<"$engine_out")
awk -v e="$engine_s" -v t="$(step_seconds <<<"$torch_out")" \
  -v f="$(step_seconds <<<"$foreach_out")" -v b="$batch" 'BEGIN {
  printf "== xmr training step, batch %d (median forward+backward + median adamw)\n", b
  printf "tailor engine                %.3f s\n", e
  printf "pytorch, AdamW per-tensor    %.3f s   pytorch / engine = %.2fx\n", t, t / e
  printf "pytorch, AdamW foreach       %.3f s   pytorch / engine = %.2fx\n", f, f / e }'
