#!/usr/bin/env python3
"""Sessions in Redis: two tailord replicas share one redis-server (Debian package), a session
started on one takes turns on either (after the first is killed, with the result of an
uninterrupted session), survives a replica restart, and deleting it anywhere
deletes it everywhere; losing Redis gives errors, not crashes, and service resumes when it is
back. usage: test_redis.py TAILORD_EXE TESTDATA_DIR REDIS_SERVER"""
import atexit
import json
import os
import shutil
import subprocess
import sys
import time

from tailord_harness import OpenApi, Server, Tap, free_port, request, workdir

tap = Tap()
spec = OpenApi()


def call(port, method, path, body=None, expect=200):
    status, hdrs, data = request(port, method, path, body)
    problems = spec.check(method, path, status, hdrs, data)
    tap.ok(status == expect and not problems, f"{method} {path} on :{port} -> {status} (want {expect})",
           "\n".join(problems) + f"\n{data[:200]!r}")
    return json.loads(data) if data else None


def start_redis(exe, port, work):
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", work],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
    time.sleep(0.3)
    return proc


def main():
    exe, testdata, redis_exe = sys.argv[1:4]
    work = workdir()
    redis_port = free_port()
    redis = start_redis(redis_exe, redis_port, work)
    url = ["--redis_url", f"redis://127.0.0.1:{redis_port}"]
    a = Server(exe, testdata, work, url)
    b = Server(exe, testdata, work, url)
    if not tap.ok(a.wait_ready() and b.wait_ready(), "two replicas on one Redis",
                  a.error_log()[-400:]):
        a.stop(), b.stop(), redis.terminate()
        return tap.done()
    # Replica A takes turn 1 and is killed (SIGKILL); replica B takes turn 2. A reference
    # session that never leaves replica B takes the same turns: turn 2 must rank the same.
    sid = call(a.port, "POST", "/v1/sessions", {}, expect=201)["session_id"]
    ref = call(b.port, "POST", "/v1/sessions", {}, expect=201)["session_id"]
    for port, session in [(a.port, sid), (b.port, ref)]:
        call(port, "POST", f"/v1/sessions/{session}/turns", {"text": "red", "reference_item_id": 2})
    a.proc.kill()
    a.proc.wait()
    t2 = call(b.port, "POST", f"/v1/sessions/{sid}/turns", {"text": "shorter"})
    r2 = call(b.port, "POST", f"/v1/sessions/{ref}/turns", {"text": "shorter"})
    tap.ok(t2["turn"]["turn"] == 2, "replica B continues the session of the killed replica A")
    ranked = [(r["id"], r["score"]) for r in t2["results"]]
    tap.ok(ranked and ranked == [(r["id"], r["score"]) for r in r2["results"]],
           "its turn 2 ranks exactly as an uninterrupted session's", (t2, r2))
    call(b.port, "DELETE", f"/v1/sessions/{ref}")
    a = Server(exe, testdata, work, url)
    tap.ok(a.wait_ready(), "replica A restarts after SIGKILL", a.error_log()[-400:])
    got = call(a.port, "GET", f"/v1/sessions/{sid}")
    tap.ok(got["turn_count"] == 2 and [t["text"] for t in got["turns"]] == ["red", "shorter"],
           "replica A sees both turns")
    a.stop()
    a = Server(exe, testdata, work, url)
    tap.ok(a.wait_ready(), "replica A restarts")
    t3 = call(a.port, "POST", f"/v1/sessions/{sid}/turns", {"text": "in green"})
    tap.ok(t3["turn"]["turn"] == 3, "the session survives a replica restart")
    _, _, metrics = request(b.port, "GET", "/metrics")
    tap.ok(b"tailord_sessions 1\n" in metrics, "sessions gauge counts Redis keys")
    call(b.port, "DELETE", f"/v1/sessions/{sid}")
    call(a.port, "GET", f"/v1/sessions/{sid}", expect=404)

    redis.terminate()
    redis.wait()
    status, _, data = request(a.port, "POST", "/v1/sessions", {})
    tap.ok(status >= 500 and b'"error"' in data, f"Redis down: session creation fails cleanly ({status})")
    status, _, _ = request(a.port, "GET", "/healthz")
    tap.ok(status == 200, "replica healthy while Redis is down")
    redis = start_redis(redis_exe, redis_port, work)
    sid2 = call(a.port, "POST", "/v1/sessions", {}, expect=201)
    tap.ok(sid2 is not None, "sessions work again once Redis is back")
    tap.ok(a.stop() == 0 and b.stop() == 0, "replicas exit cleanly")
    redis.terminate()
    redis.wait()
    shutil.rmtree(work, ignore_errors=True)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
