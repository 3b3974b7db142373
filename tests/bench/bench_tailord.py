#!/usr/bin/python3
"""Load benchmark and saturation soak of tailord on loopback, driven by wrk (Debian's package).

Starts tailord with MODEL and INDEX, then:
  1. one wrk phase per request kind (text search, item search, composed search, session turns):
     throughput and p50/p90/p99 latency;
  2. a soak: all kinds mixed at saturation for SOAK seconds, sampling tailord's resident memory
     and open file descriptors every few seconds.
Sessions are not deleted: tailord runs with sessions.max_count = --max-sessions (256), so the
store reaches its bound during warm-up and then evicts the least recently used session for each
new one; resident memory after warm-up then measures leaks, not the store filling. It fails
(exit 1) on any 5xx or socket error, on resident memory growing more than 5% after warm-up (the
first fifth of the soak), or on more open descriptors once the load has stopped than before it
started. Prints a Markdown summary (for tests/bench/RESULTS.md), with the batch
sizes from /metrics.

  tests/bench/bench_tailord.py --build build --model var/demo/model --index var/demo/index
      [--phase-seconds 30] [--soak-seconds 600] [--connections 16]
"""
import argparse
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = [("text", "text search"), ("item", "item search (more like this)"),
         ("compose", "composed search (item + text)"), ("session", "session turns")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def proc_stats(pid):
    """(resident KiB, open descriptors) of pid."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def batch_stats(port):
    """{sum, count, buckets{le: cumulative}} of tailord_batch_size from /metrics."""
    stats = {"sum": 0.0, "count": 0.0, "buckets": {}}
    for line in get(port, "/metrics").splitlines():
        m = re.match(r'tailord_batch_size_bucket\{[^}]*le="([^"]+)"[^}]*\} (\S+)', line)
        if m:
            stats["buckets"][m.group(1)] = stats["buckets"].get(m.group(1), 0) + float(m.group(2))
        m = re.match(r"tailord_batch_size_(sum|count)(?:\{[^}]*\})? (\S+)", line)
        if m:
            stats[m.group(1)] += float(m.group(2))
    return stats


def write_queries(index, work):
    """Query texts (catalogue titles) and item ids from the index's catalogue, as files."""
    db = sqlite3.connect(f"file:{index}/catalog.sqlite?mode=ro", uri=True)
    rows = db.execute("SELECT id, title FROM products ORDER BY id").fetchall()
    db.close()
    step = max(1, len(rows) // 500)
    texts, ids = os.path.join(work, "texts"), os.path.join(work, "ids")
    with open(texts, "w") as f:
        f.writelines(f"{t}\n" for _, t in rows[::step] if t and "\n" not in t)
    with open(ids, "w") as f:
        f.writelines(f"{i}\n" for i, _ in rows[::step])
    return texts, ids


def run_wrk(port, mode, seconds, connections, texts, ids):
    env = dict(os.environ, MODE=mode, TEXTS=texts, IDS=ids)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                          "-s", os.path.join(HERE, "load.lua"), f"http://127.0.0.1:{port}"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=True).stdout
    num = lambda pattern: float(re.search(pattern, out).group(1))
    return {"rps": num(r"Requests/sec:\s+([\d.]+)"),
            "p50": num(r"latency p50=([\d.]+)"), "p90": num(r"latency p90=([\d.]+)"),
            "p99": num(r"latency p99=([\d.]+)"),
            "2xx": int(num(r"2xx=(\d+)")), "4xx": int(num(r"4xx=(\d+)")),
            "5xx": int(num(r"5xx=(\d+)")), "other": int(num(r"other=(\d+)")),
            "socket_errors": sum(int(x) for x in re.search(
                r"errors connect=(\d+) read=(\d+) write=(\d+) status=\d+ timeout=(\d+)",
                out).groups())}


def soak(port, pid, seconds, connections, texts, ids, interval=5):
    """The mixed load for seconds, with (elapsed s, RSS KiB, fds) samples."""
    env = dict(os.environ, MODE="mix", TEXTS=texts, IDS=ids)
    load = subprocess.Popen(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout",
                             "10s", "-s", os.path.join(HERE, "load.lua"),
                             f"http://127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start, samples = time.monotonic(), []
    while load.poll() is None:
        time.sleep(interval)
        if load.poll() is None:
            samples.append((time.monotonic() - start, *proc_stats(pid)))
    out = load.stdout.read()
    if load.returncode:
        raise RuntimeError(f"wrk failed:\n{out}")
    return out, samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--phase-seconds", type=int, default=30)
    ap.add_argument("--soak-seconds", type=int, default=600)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--max-sessions", type=int, default=256,
                    help="tailord's sessions.max_count: the session store's bound")
    ap.add_argument("--json", help="also write the numbers to this file")
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="tl_bench_tailord_")
    texts, ids = write_queries(a.index, work)
    port = free_port()
    errors = open(os.path.join(work, "error.log"), "w")
    server = subprocess.Popen([os.path.join(a.build, "server", "tailord"), "--model_dir", a.model,
                               "--index_dir", a.index, "--state_dir", os.path.join(work, "state"),
                               "--port", str(port), "--log_level", "warn"],
                              stdout=subprocess.DEVNULL, stderr=errors,
                              env=dict(os.environ, TAILORD_SESSIONS_MAX_COUNT=str(a.max_sessions)))
    failures, report = [], {"connections": a.connections, "max_sessions": a.max_sessions,
                            "phases": {}}
    try:
        for _ in range(300):
            try:
                get(port, "/readyz")
                break
            except OSError:
                time.sleep(0.1)
        before = batch_stats(port)
        for mode, label in KINDS:
            r = run_wrk(port, mode, a.phase_seconds, a.connections, texts, ids)
            report["phases"][mode] = r
            print(f"{label}: {r['rps']:.1f} req/s, p50 {r['p50']:.1f} ms, p90 {r['p90']:.1f} ms, "
                  f"p99 {r['p99']:.1f} ms, 2xx {r['2xx']} 4xx {r['4xx']} 5xx {r['5xx']}",
                  flush=True)
            if r["5xx"] or r["4xx"] or r["other"] or r["socket_errors"]:
                failures.append(f"{label}: non-2xx responses or socket errors: {r}")
        after_phases = batch_stats(port)
        time.sleep(1)
        rss0, fds0 = proc_stats(server.pid)
        out, samples = soak(port, server.pid, a.soak_seconds, a.connections, texts, ids)
        sessions = re.search(r"^tailord_sessions (\S+)", get(port, "/metrics"), re.M)
        time.sleep(2)  # wrk's connections close
        rss1, fds1 = proc_stats(server.pid)
        s = {k: int(v) for k, v in re.findall(r"(2xx|4xx|5xx|other)=(\d+)", out)}
        s["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        s.update({f"p{p}": float(v) for p, v in re.findall(r"latency p([\d.]+)=([\d.]+)", out)})
        s["socket_errors"] = sum(int(x) for x in re.search(
            r"errors connect=(\d+) read=(\d+) write=(\d+) status=\d+ timeout=(\d+)", out).groups())
        warm = [x for x in samples if x[0] >= a.soak_seconds / 5]
        base = warm[0][1] if warm else rss0
        peak = max((x[1] for x in warm), default=base)
        s.update({"seconds": a.soak_seconds, "rss_start_kib": rss0, "rss_after_warmup_kib": base,
                  "rss_peak_after_warmup_kib": peak, "rss_end_kib": rss1,
                  "rss_growth": peak / base - 1, "fds_before": fds0, "fds_after": fds1,
                  "fds_peak": max((x[2] for x in samples), default=fds0),
                  "sessions_at_end": float(sessions.group(1)) if sessions else None})
        report["soak"] = s
        print(f"soak {a.soak_seconds} s mixed: {s['rps']:.1f} req/s, p50 {s['p50']:.1f} ms, "
              f"p99 {s['p99']:.1f} ms, 2xx {s['2xx']} 4xx {s['4xx']} 5xx {s['5xx']}, socket "
              f"errors {s['socket_errors']}; RSS {rss0 // 1024} MiB at start, "
              f"{base // 1024} MiB after warm-up, peak {peak // 1024} MiB "
              f"({100 * s['rss_growth']:+.2f}%), {rss1 // 1024} MiB at the end; fds {fds0} "
              f"before, peak {s['fds_peak']}, {fds1} after; {s['sessions_at_end']} live sessions",
              flush=True)
        if s["5xx"] or s["socket_errors"] or s["other"]:
            failures.append(f"soak: 5xx, other statuses or socket errors: {s}")
        if s["4xx"]:
            failures.append(f"soak: {s['4xx']} 4xx responses")
        if s["rss_growth"] > 0.05:
            failures.append(f"soak: RSS grew {100 * s['rss_growth']:.2f}% after warm-up")
        if fds1 > fds0:
            failures.append(f"soak: {fds1 - fds0} more open descriptors after the load")
        end = batch_stats(port)
        for name, (b0, b1) in {"phases": (before, after_phases), "soak": (after_phases, end)}.items():
            n = b1["count"] - b0["count"]
            hist = {le: b1["buckets"][le] - b0["buckets"].get(le, 0) for le in b1["buckets"]}
            report[f"batches_{name}"] = {"forward_passes": n,
                                         "mean_size": (b1["sum"] - b0["sum"]) / n if n else 0,
                                         "cumulative_buckets": hist}
            print(f"batches ({name}): {int(n)} forward passes, mean size "
                  f"{report[f'batches_{name}']['mean_size']:.2f}, cumulative by size ≤ le: "
                  + ", ".join(f"{le}:{int(c)}" for le, c in hist.items()), flush=True)
    finally:
        server.terminate()
        code = server.wait(timeout=60)
        errors.close()
    if code != 0:
        failures.append(f"tailord exited {code} on SIGTERM")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1)
    for f in failures:
        print("FAIL:", f)
    print("PASS" if not failures else f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
