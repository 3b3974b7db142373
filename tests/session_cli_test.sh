#!/usr/bin/env bash
# `tailor session` on clip-tiny (the decayed-sum fallback): a 3-turn script over a generated folder
# of 8 PNG images, in plain and JSON output, and again over the saved embeddings file. Checks the
# output's structure, turn numbers, result counts and ordering, and the usage/runtime errors. TAP.
# usage: session_cli_test.sh TAILOR_EXE CLIP_TINY_DIR
tailor=$1 model=$2
work=$(mktemp -d /tmp/tl_session_cli_XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0 fail=0
check() { # check NAME COMMAND...: one TAP case, passing when COMMAND succeeds
  local name=$1; shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; fail=1; fi
}

# 8 small RGB PNGs of different colours and patterns (Python's standard library only).
python3 - "$work/gallery" <<'EOF'
import os, struct, sys, zlib
out = sys.argv[1]
os.makedirs(out)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
for i in range(8):
    w, h = 24 + 4 * i, 40 - 2 * i
    rows = b"".join(b"\0" + bytes(((x * (i + 1) + y * 7) % 256, (40 * i) % 256, (x ^ y) * i % 256)[c]
                                  for x in range(w) for c in range(3)) for y in range(h))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    open(os.path.join(out, "item%d.png" % i), "wb").write(png)
EOF
cp "$work/gallery/item5.png" "$work/reference.png"
cat > "$work/turns.json" <<'EOF'
{"turns": [{"image": "reference.png", "text": "a red dress"},
           {"gallery_item": "item2.png", "text": "make it shorter"},
           {"gallery_item": 6, "text": "with long sleeves"}]}
EOF
cat > "$work/image_turns.json" <<'EOF'
{"turns": [{"image": "reference.png", "text": "a red dress"},
           {"image": "gallery/item2.png", "text": "make it shorter"},
           {"image": "gallery/item6.png", "text": "with long sleeves"}]}
EOF

run() { "$tailor" session --model "$model" "$@"; }
plain=$(run --turns "$work/turns.json" --gallery "$work/gallery" -k 3 \
        --save-gallery "$work/gallery.safetensors"); rc=$?
check "plain run exits 0" test $rc -eq 0
# Lines: turn rank id name score; 3 turns x 3 results, ranks 1..3, scores non-increasing.
check "plain output: 3 turns of 3 ranked results" awk -F'\t' '
  NF != 5 { bad = 1 }
  { want_turn = int((NR - 1) / 3) + 1; want_rank = (NR - 1) % 3 + 1 }
  $1 != want_turn || $2 != want_rank { bad = 1 }
  $4 != "item" $3 ".png" { bad = 1 }
  $2 > 1 && $5 > last + 1e-6 { bad = 1 }
  { last = $5 }
  END { exit bad || NR != 9 }' <<<"$plain"

json=$(run --turns "$work/turns.json" --gallery "$work/gallery" -k 20 --json)
check "json run exits 0" test $? -eq 0
check "json: decayed-sum memory, 3 turns, k capped at the gallery" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["memory"] == "decayed-sum" and d["gallery_size"] == 8, d
assert [t["turn"] for t in d["turns"]] == [1, 2, 3]
for t in d["turns"]:
    r = t["results"]
    assert [x["rank"] for x in r] == list(range(1, 9))
    assert sorted(x["id"] for x in r) == list(range(8))
    assert all(x["name"] == "item%d.png" % x["id"] for x in r)
    assert all(a["score"] >= b["score"] for a, b in zip(r, r[1:]))
assert d["turns"][1]["text"] == "make it shorter"
' "$json"

from_file=$(run --turns "$work/image_turns.json" --gallery "$work/gallery.safetensors" -k 3)
check "embeddings file run exits 0" test $? -eq 0
check "embeddings file: same ids and scores as the folder" python3 -c '
import sys
a = [l.split("\t") for l in sys.argv[1].splitlines()]
b = [l.split("\t") for l in sys.argv[2].splitlines()]
assert len(a) == len(b) == 9
assert all(x[:3] == y[:3] and x[4] == y[4] and y[3] == "-" for x, y in zip(a, b)), (a, b)
' "$plain" "$from_file"

run --turns "$work/turns.json" --gallery "$work/gallery.safetensors" >/dev/null 2>"$work/err"
rc=$?
check "gallery_item over an embeddings file is a runtime error" \
  bash -c "test $rc -eq 1 && grep -q 'turn 2: gallery_item needs an image folder' '$work/err'"
run --gallery "$work/gallery" >/dev/null 2>&1
check "missing --turns is a usage error" test $? -eq 2
run --turns "$work/turns.json" --gallery "$work/gallery" -k 0 >/dev/null 2>&1
check "-k 0 is a usage error" test $? -eq 2
check "--help answers with status 0" bash -c "'$tailor' session --help | grep -q 'usage: tailor session'"
echo "1..$n"
exit $fail
