#!/usr/bin/env bash
# Every binary answers --help and --version with status 0 and non-empty output. TAP.
n=0; fail=0
for exe in "$@"; do
  for flag in --help --version; do
    n=$((n + 1))
    out=$("$exe" $flag 2>&1); rc=$?
    if [[ $rc -eq 0 && -n "$out" ]]; then echo "ok $n - $(basename "$exe") $flag"
    else echo "not ok $n - $(basename "$exe") $flag (rc=$rc)"; fail=1; fi
  done
done
echo "1..$n"
exit $fail
