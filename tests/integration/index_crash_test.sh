#!/usr/bin/env bash
# Crash safety of the index builder (TAP). Builds a small catalogue of generated PNGs with the
# TEST-ONLY fake embedder (index_fake_build), then 20 times: starts a rebuild over the published
# index, kills it with SIGKILL at a random moment, checks that the published index still loads
# and verifies, and that --resume finishes with the same galleries and catalogue as an
# uninterrupted build.   usage: index_crash_test.sh PATH/TO/index_fake_build [ROUNDS]
set -u
driver=$1
rounds=${2:-20}
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
    for i in range(60):
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

"$driver" build "$work/catalog.jsonl" "$work/reference" 2>/dev/null &&
  "$driver" verify "$work/reference" >/dev/null && ok "uninterrupted reference build" ||
  not_ok "uninterrupted reference build"
reference=$(content "$work/reference")
"$driver" build "$work/catalog.jsonl" "$work/out" 2>/dev/null && ok "first published build" ||
  not_ok "first published build"
[[ "$(content "$work/out")" == "$reference" ]] && ok "builds are reproducible" ||
  not_ok "builds are reproducible"

export TL_FAKE_EMBED_DELAY_US=3000
for ((r = 1; r <= rounds; r++)); do
  resume=""; ((r % 2 == 0)) && resume=--resume  # even rounds kill a resumed build
  "$driver" build "$work/catalog.jsonl" "$work/out" $resume 2>/dev/null &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 150)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if "$driver" verify "$work/out" >/dev/null 2>"$work/err"; then
    ok "round $r: published index verifies after SIGKILL"
  else
    not_ok "round $r: published index verifies after SIGKILL ($(cat "$work/err"))"
  fi
  if TL_FAKE_EMBED_DELAY_US=0 "$driver" build "$work/catalog.jsonl" "$work/out" --resume 2>"$work/err" &&
     [[ "$(content "$work/out")" == "$reference" ]]; then
    ok "round $r: --resume equals the uninterrupted build"
  else
    not_ok "round $r: --resume equals the uninterrupted build ($(cat "$work/err"))"
  fi
done
[[ ! -e "$work/out.building" ]] && ok "no work directory left" || not_ok "no work directory left"
echo "1..$n"
exit $failed
