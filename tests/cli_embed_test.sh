#!/usr/bin/env bash
# `tailor embed` end to end on clip-tiny: exit statuses, one line per input in order, unit-norm
# vectors of the projection width, JSON output, errors naming the input. TAP.
# usage: cli_embed_test.sh TAILOR_EXE MODEL_DIR
exe=$1; model=$2; img="$model/images/c_gray_rings_40x40.png"
n=0; fail=0
check() { # check NAME CONDITION-STATUS
  n=$((n + 1))
  if [[ $2 -eq 0 ]]; then echo "ok $n - $1"; else echo "not ok $n - $1"; fail=1; fi
}
dim=$(sed -n 's/.*"projection_dim": *\([0-9]*\).*/\1/p' "$model/config.json" | head -1)

"$exe" embed --help >/dev/null; check "--help exits 0" $?
"$exe" embed --model "$model" 2>/dev/null; [[ $? -eq 2 ]]; check "no inputs is a usage error (2)" $?
"$exe" embed --model "$model" --text a --bogus 2>/dev/null; [[ $? -eq 2 ]]
check "unknown option is a usage error (2)" $?
err=$("$exe" embed --model "$model" --text a --image /nonexistent/x.png 2>&1 >/dev/null)
[[ $? -eq 1 && "$err" == *"/nonexistent/x.png"* ]]; check "unreadable image: exit 1, message names it" $?
err=$("$exe" embed --model "$model" --image "$model/config.json" 2>&1 >/dev/null)
[[ $? -eq 1 && "$err" == *"config.json"* ]]; check "not an image: exit 1, message names it" $?

out=$("$exe" embed --model "$model" --text "a red dress" --image "$img" --text "blue jeans")
[[ $? -eq 0 ]]; check "texts and an image: exit 0" $?
kinds=$(printf '%s\n' "$out" | cut -f1 | tr '\n' ' ')
[[ "$kinds" == "text image text " ]]; check "one line per input, in order ($kinds)" $?
printf '%s\n' "$out" | awk -F'\t' -v dim="$dim" '
  { n = split($3, v, " "); s = 0; for (i = 1; i <= n; i++) s += v[i] * v[i]
    if (n != dim || s < 0.9999 || s > 1.0001) bad = 1 }
  END { exit bad }'
check "each embedding has $dim unit-norm values" $?

json=$("$exe" embed --model "$model" --text "a red dress" --image "$img" --json)
[[ $? -eq 0 && "$json" == '[{"kind": "text", "input": "a red dress", "embedding": ['* ]]
check "--json prints an array of objects" $?
echo "1..$n"
exit $fail
