"""Counts TAP cases across meson's testlog.json and prints 'N passed, N failed' last.
A test program that failed without reporting a failing case (crash, timeout) counts as one
failure, so nothing can pass by dying early."""
import json
import sys

passed = failed = 0
with open(sys.argv[1]) as log:
    for line in log:
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok = sum(1 for l in out.splitlines() if l.startswith("ok "))
        bad = sum(1 for l in out.splitlines() if l.startswith("not ok "))
        if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and bad == 0:
            bad = 1
            print(f"FAILED: {t['name']} ({t['result']})")
        elif bad:
            print(f"FAILED: {t['name']} ({bad} cases)")
        passed += ok
        failed += bad
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
