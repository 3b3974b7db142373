#!/usr/bin/env bash
# `tailor-train train --resume` continues bit for bit: K steps in one run against K/2 steps,
# then --resume to K, on a tiny generated demo set with clip-tiny as the initial checkpoint and
# all five tasks. The checkpoints' weights, optimiser state and loop state must be identical
# files (every tensor byte for byte), evaluation included. Also: teachers mode and distillation from its teachers run,
# and a bad config key is refused naming the key. TAP.
# usage: train_resume_test.sh TAILOR_TRAIN CLIP_TINY_DIR
set -u
train=$(realpath "$1") init=$(realpath "$2")
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
n=0 fail=0
check() { # check DESCRIPTION COMMAND...
  n=$((n + 1))
  if "${@:2}" >"$work/out.$n" 2>&1; then echo "ok $n - $1"
  else echo "not ok $n - $1"; sed 's/^/# /' "$work/out.$n"; fail=1; fi
}
config() { # config OUTPUT_DIR
  cat <<JSON
{"model": {"init": "$init", "adapter_dim": 8, "xaa_dim": 8, "ntm_blocks": 2, "ntm_slots": 4},
 "tasks": [{"task": "xmr", "dataset": {"kind": "demo", "path": "demo"},
            "eval_dataset": {"kind": "demo", "path": "demo", "split": "test"}},
           {"task": "tgir", "dataset": {"kind": "demo", "path": "demo"}},
           {"task": "scr", "dataset": {"kind": "demo", "path": "demo"}},
           {"task": "fic", "dataset": {"kind": "demo", "path": "demo"}},
           {"task": "multiturn", "dataset": {"kind": "demo", "path": "demo"}}],
 "optimizer": {"lr": 1e-3, "backbone_lr_mult": 0.1, "grad_clip": 1.0},
 "schedule": {"kind": "cosine", "warmup_steps": 2},
 "steps": 10, "batch_size": 3, "sampling": "weights", "threads": 2, "log_interval": 1, "seed": 7,
 "output": {"dir": "$1", "checkpoint_interval": 3}, "eval": {"interval": 5}}
JSON
}
cd "$work" || exit 1
check "demo data" "$train" demo-data --out demo --size 10 --test-size 10
config whole >whole.json
config split >split.json
check "10 steps in one run" "$train" train whole.json
check "5 steps" "$train" train split.json --steps 5
check "stopped at step 5" bash -c "grep -q '\"step\":5,' split/metrics.jsonl && ! grep -q '\"step\":6,' split/metrics.jsonl"
check "resumed to 10" "$train" split.json --resume
for f in model.safetensors trainer_state.safetensors loop_state.safetensors config.json; do
  check "resumed $f identical" cmp whole/checkpoint/$f split/checkpoint/$f
done
check "evaluated at steps 5 and 10" bash -c "grep -q '\"step\":5,\"eval\":{\"xmr.t2i_r1' whole/metrics.jsonl &&
  grep -q '\"step\":10,\"eval\":{\"xmr.t2i_r1' whole/metrics.jsonl"
check "every task trained" bash -c 'for t in xmr tgir scr fic multiturn; do
  grep -q "\"task\":\"$t\"" whole/metrics.jsonl || exit 1; done'
# teachers mode (one single-task model per task), then distillation from those teachers
sed 's/"steps": 10/"mode": "teachers", "steps": 2/; s/"dir": "whole"/"dir": "teach"/' whole.json |
  grep -v '"fic"\|"scr"\|"multiturn"' | sed 's/"tgir", "dataset": {"kind": "demo", "path": "demo"}},/"tgir", "dataset": {"kind": "demo", "path": "demo"}}],/' >teach.json
check "teachers mode" "$train" train teach.json
check "one teacher per task" test -f teach/teacher-xmr/checkpoint/model.safetensors -a \
  -f teach/teacher-tgir/checkpoint/model.safetensors
sed 's/"dir": "teach"/"dir": "student"/; s/"mode": "teachers", //;
  s/"task": "\([a-z]*\)", "dataset": {\([^}]*\)}/"task": "\1", "dataset": {\2}, "teacher": "teach\/teacher-\1\/checkpoint"/' \
  teach.json >student.json
check "distillation from the teachers" "$train" train student.json
sed 's/"seed"/"seeed"/' whole.json >bad.json
check "bad key refused" bash -c "! '$train' train bad.json 2>err.txt && grep -q seeed err.txt"
echo "1..$n"
exit $fail
