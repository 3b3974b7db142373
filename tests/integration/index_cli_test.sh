#!/usr/bin/env bash
# `tailor index build|info|verify` and `tailor search` end to end with the real engine on
# testdata/clip-tiny and its images (TAP).   usage: index_cli_test.sh PATH/TO/tailor TESTDATA
set -u
tailor=$1
model=$2/clip-tiny
work=$(mktemp -d /tmp/tl_index_cli_XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0; failed=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; failed=1; fi; }

mkdir "$work/img"
i=0
for f in "$model"/images/*; do
  cp "$f" "$work/img/"
  name=$(basename "$f")
  cat=$([[ $((i % 2)) == 0 ]] && echo dresses || echo shoes)
  printf '{"id": %d, "sku": "S%d", "title": "item %d", "description": "a %s", "category": "%s", "image": "img/%s"}\n' \
    $((100 + i)) $i $i "$cat" "$cat" "$name" >> "$work/catalog.jsonl"
  i=$((i + 1))
done
echo '{"id": 100, "image": "img/nothing.png"}' >> "$work/catalog.jsonl"   # duplicate id

check "build publishes an index" \
  '"$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$work/idx" --batch 2 >/dev/null 2>"$work/err"'
check "the duplicate id is reported with its line number" "grep -q 'catalog.jsonl:$((i + 1)): duplicate id 100' '$work/err'"
check "verify passes" '"$tailor" index verify "$work/idx" >/dev/null'
check "info shows the product count" '"$tailor" index info "$work/idx" | grep -q "products: *$i"'
check "an image finds itself first" \
  '"$tailor" search --index "$work/idx" --model "$model" --image "$work/img/$name" -k 1 | grep -q "^ 1  $((99 + i)) "'
check "an item search excludes the item and honours the category" \
  '"$tailor" search --index "$work/idx" --model "$model" --item 100 --category dresses --json > "$work/item.json" &&
   python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r and all(x[\"id\"]!=100 and x[\"category\"]==\"dresses\" for x in r)" "$work/item.json"'
check "a text search returns k results" \
  '[[ $("$tailor" search --index "$work/idx" --model "$model" --text "a red dress" -k 3 | wc -l) == 3 ]]'
check "a composed search (item + text) ranks the tgir gallery by the composed query" \
  '"$tailor" search --index "$work/idx" --model "$model" --item 100 --text "in blue" -k 3 --json > "$work/c1.json" &&
   "$tailor" search --index "$work/idx" --model "$model" --item 100 --text "in blue" -k 3 --gallery xmr_image --json > "$work/c2.json" &&
   python3 -c "import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); assert len(a)==3 and all(x[\"id\"]!=100 for x in a) and [x[\"id\"] for x in a]==[x[\"id\"] for x in b]" "$work/c1.json" "$work/c2.json"'
check "an IVF build with --nprobe equal to its lists ranks as the flat build" \
  '"$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$work/ivf" --factory IVF2,Flat --nprobe 2 >/dev/null 2>&1 &&
   "$tailor" search --index "$work/ivf" --model "$model" --text "a red dress" -k $i --json > "$work/ivf.json" &&
   "$tailor" search --index "$work/idx" --model "$model" --text "a red dress" -k $i --json > "$work/flat.json" &&
   python3 -c "import json,sys; a,b=([x[\"id\"] for x in json.load(open(f))] for f in sys.argv[1:]); assert len(a)==$i and a==b, (a,b)" "$work/ivf.json" "$work/flat.json"'
check "--nprobe on a flat factory fails before embedding, naming the parameter" \
  '! "$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$work/bad" --nprobe 4 >/dev/null 2>"$work/err" &&
   grep -q nprobe "$work/err" && ! grep -q "index build:.*[0-9]/" "$work/err" && [[ ! -e "$work/bad" ]]'
check "--strict fails on the duplicate and keeps the published index" \
  '! "$tailor" index build --model "$model" --catalog "$work/catalog.jsonl" --out "$work/idx" --strict 2>/dev/null &&
   "$tailor" index verify "$work/idx" >/dev/null'
check "usage errors exit 2" \
  '"$tailor" search --index "$work/idx" 2>/dev/null; [[ $? == 2 ]] && { "$tailor" index build 2>/dev/null; [[ $? == 2 ]]; }'
check "--help answers" '"$tailor" index --help | grep -q usage && "$tailor" search --help | grep -q usage'
echo "1..$n"
exit $failed
