#!/usr/bin/env bash
# Crash safety of the index builder (TAP). Builds a catalogue of generated PNGs with the real
# `tailor index build` and a real checkpoint (clip-tiny), then 20 times: starts a rebuild over
# the published index, kills it with SIGKILL at a random moment within an uninterrupted build's
# duration, checks that the published index still loads and verifies, and that --resume
# finishes with the same galleries and catalogue as an uninterrupted build.
# usage: index_crash_test.sh PATH/TO/tailor MODEL_DIR [ROUNDS]
set -u
tailor=$1
model=$2
rounds=${3:-20}
work=$(mktemp -d /tmp/tl_index_crash_XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import json, os, struct, sys, zlib
work = sys.argv[1]
os.mkdir(os.path.join(work, "img"))
def png(path, w, h, seed):
    rows = b"".join(b"\0" + bytes(((x * 7 + y * 3 + seed * 11 + c * 5) * (seed % 5 + 1)) % 256
                                  for x in range(w) for c in range(3)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
with open(os.path.join(work, "catalog.jsonl"), "w") as f:
    for i in range(240):
        png(os.path.join(work, "img", f"{i}.png"), 8 + i % 5, 6 + i % 3, i)
        f.write(json.dumps({"id": 1000 + i, "title": f"item {i}", "description": "generated",
                            "category": ["dresses", "shoes", "bags"][i % 3],
                            "image": f"img/{i}.png"}) + "\n")
PY

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; failed=1; }
failed=0
# Everything in the manifest but its creation time.
content() { python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/manifest.json")); m.pop("created"); print(json.dumps(m, sort_keys=True))' "$1"; }

# One product per batch and one thread: many checkpoint appends to land in, deterministic files.
build() { "$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$1" \
            --batch 1 --threads 1 "${@:2}" 2>"$work/err" >/dev/null; }
verify() { "$tailor" index verify "$1" >/dev/null 2>"$work/err"; }
start=$(date +%s%N)
build "$work/reference" && verify "$work/reference" && ok "uninterrupted reference build" ||
  not_ok "uninterrupted reference build ($(cat "$work/err"))"
duration_ms=$((($(date +%s%N) - start) / 1000000))
echo "# an uninterrupted build takes $duration_ms ms; kills land uniformly within it"
reference=$(content "$work/reference")
build "$work/out" && ok "first published build" || not_ok "first published build"
[[ "$(content "$work/out")" == "$reference" ]] && ok "builds are reproducible" ||
  not_ok "builds are reproducible"

# A second build of the same directory while one runs is refused, and the first is unharmed.
(exec "$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$work/out" \
   --batch 1 --threads 1 2>/dev/null >/dev/null) &
pid=$!
sleep 0.2
if ! build "$work/out" && grep -q "another build" "$work/err"; then
  ok "a concurrent build of the same directory is refused"
else
  not_ok "a concurrent build of the same directory is refused ($(cat "$work/err"))"
fi
wait $pid && [[ "$(content "$work/out")" == "$reference" ]] && ok "the running build finishes" ||
  not_ok "the running build finishes"

for ((r = 1; r <= rounds; r++)); do
  resume=""; ((r % 2 == 0)) && resume=--resume  # even rounds kill a resumed build
  # exec: $! must be the builder itself, or SIGKILL would leave it running as an orphan.
  (exec "$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$work/out" \
     --batch 1 --threads 1 $resume 2>/dev/null >/dev/null) &
  pid=$!
  delay_ms=$((RANDOM % (duration_ms + 1)))
  sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  left=$(ls "$work/out.building" 2>/dev/null | tr '\n' ' ')
  echo "# round $r: killed after $delay_ms ms; work directory: ${left:-none}"
  if verify "$work/out"; then
    ok "round $r: published index verifies after SIGKILL"
  else
    not_ok "round $r: published index verifies after SIGKILL ($(cat "$work/err"))"
  fi
  if build "$work/out" --resume && [[ "$(content "$work/out")" == "$reference" ]]; then
    ok "round $r: --resume equals the uninterrupted build"
  else
    not_ok "round $r: --resume equals the uninterrupted build ($(cat "$work/err"))"
  fi
done
[[ ! -e "$work/out.building" ]] && ok "no work directory left" || not_ok "no work directory left"
echo "1..$n"
exit $failed
