#!/usr/bin/env python3
"""tailord on loopback: every endpoint, every response checked against proto/openapi.yaml;
reload (SIGHUP and /v1/admin/reload) under traffic without a failed request; SIGTERM drain
with a sessions.persist snapshot restored by the next start; admin changes surviving kill -9;
an index directory of another model refused; sessions on a checkpoint with a trained CM-NTM.
usage: test_api.py TAILORD_EXE TESTDATA_DIR"""
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from tailord_harness import (API_KEY, ROOT, OpenApi, Server, Tap, image_b64, request, workdir)

tap = Tap()
spec = OpenApi()
AUTH = {"Authorization": "Bearer " + API_KEY}


def call(port, method, path, body=None, headers=None, expect=200):
    status, hdrs, data = request(port, method, path, body, headers)
    problems = spec.check(method, path, status, hdrs, data)
    tap.ok(status == expect and not problems, f"{method} {path} -> {status} (want {expect})",
           "\n".join(problems) + f"\nbody: {data[:300]!r}")
    try:
        return json.loads(data) if data and hdrs.get("content-type", "").startswith("application/json") else data
    except ValueError:
        return data


def check_health_and_info(port, n_items):
    call(port, "GET", "/healthz")
    call(port, "GET", "/readyz")
    info = call(port, "GET", "/v1/info")
    tap.ok(info["engine"]["index"]["items"] == n_items, "info counts the catalogue",
           info["engine"]["index"])
    status, hdrs, data = request(port, "GET", "/metrics")
    text = data.decode()
    tap.ok(status == 200 and hdrs.get("x-request-id") and "tailord_requests_total{" in text
           and "tailord_batch_size_bucket" in text and "tailord_queue_depth" in text
           and "tailord_sessions" in text, "metrics in Prometheus text")


def check_search(port, image):
    r = call(port, "POST", "/v1/search", {"text": "a red dress", "limit": 3})
    tap.ok(len(r["results"]) == 3 and r["mode"] == "text", "text search gives 3 results")
    scores = [x["score"] for x in r["results"]]
    tap.ok(scores == sorted(scores, reverse=True), "results ranked by score")
    r = call(port, "POST", "/v1/search", {"image": image, "limit": 5})
    tap.ok(r["mode"] == "image" and len(r["results"]) == 5, "image search")
    r = call(port, "POST", "/v1/search", {"item_id": 3, "limit": 100})
    ids = [x["id"] for x in r["results"]]
    tap.ok(3 not in ids and r["mode"] == "item", "more like this excludes the item", ids)
    r = call(port, "POST", "/v1/search", {"image": image, "text": "in blue"})
    tap.ok(r["mode"] == "composed", "image + text is composed")
    r = call(port, "POST", "/v1/search", {"item_id": 2, "text": "in blue",
                                           "filter": {"category": "shoes"}})
    tap.ok(r["results"] and all(x["category"] == "shoes" for x in r["results"]),
           "category filter")
    r = call(port, "POST", "/v1/search", {"text": "x", "filter": {"category": "tops",
                                                                   "subcategory": "sub1"}})
    tap.ok(all(x["subcategory"] == "sub1" and x["category"] == "tops" for x in r["results"]),
           "subcategory filter")
    all_ids = [x["id"] for x in call(port, "POST", "/v1/search", {"text": "x", "limit": 6})["results"]]
    page = [x["id"] for x in call(port, "POST", "/v1/search",
                                  {"text": "x", "limit": 3, "offset": 3})["results"]]
    tap.ok(page == all_ids[3:6], "offset pages through the same ranking", (all_ids, page))
    call(port, "POST", "/v1/search", {"item_id": 999999}, expect=404)
    call(port, "POST", "/v1/search", {"item_id": 999999, "text": "red"}, expect=404)
    _, _, item_image = request(port, "GET", "/images/4")
    by_item = call(port, "POST", "/v1/search", {"item_id": 4, "text": "in red", "limit": 20})
    by_image = call(port, "POST", "/v1/search", {"image": base64.b64encode(item_image).decode(),
                                                  "text": "in red", "limit": 20})
    scores = {x["id"]: x["score"] for x in by_image["results"]}
    tap.ok(by_item["mode"] == "composed" and
           all(abs(scores[x["id"]] - x["score"]) < 1e-5 for x in by_item["results"]),
           "item + text composes the item's image with the text")


def check_embed(port, image):
    r = call(port, "POST", "/v1/embed", {"texts": ["a", "b"], "images": [image]})
    norms = [sum(v * v for v in row) ** 0.5 for row in r["texts"] + r["images"]]
    tap.ok(len(r["texts"]) == 2 and len(r["images"]) == 1 and
           all(abs(n - 1) < 1e-4 for n in norms) and len(r["texts"][0]) == r["dim"],
           "embeddings are L2-normalised rows of dim", norms)
    single = call(port, "POST", "/v1/embed", {"texts": ["b"]})
    diff = max(abs(a - b) for a, b in zip(single["texts"][0], r["texts"][1]))
    tap.ok(diff < 1e-5, "batched and single embeddings agree", diff)


def check_sessions(port):
    s = call(port, "POST", "/v1/sessions", expect=201)
    sid = s["session_id"]
    t1 = call(port, "POST", f"/v1/sessions/{sid}/turns",
              {"text": "like this but red", "reference_item_id": 4, "limit": 4})
    tap.ok(t1["turn"]["turn"] == 1 and t1["turn"]["mode"] == "composed", "turn 1 composed")
    t2 = call(port, "POST", f"/v1/sessions/{sid}/turns", {"text": "shorter", "limit": 4})
    tap.ok(t2["turn"]["turn"] == 2 and t2["turn"]["reference_item_id"] is None,
           "turn 2 refines the previous query")
    got = call(port, "GET", f"/v1/sessions/{sid}")
    tap.ok(got["turn_count"] == 2 and [t["text"] for t in got["turns"]] ==
           ["like this but red", "shorter"], "session lists its turns")
    call(port, "POST", "/v1/sessions", {}, expect=201)
    return sid


def check_admin_and_images(port, image, n_items):
    call(port, "PUT", "/v1/items/500", {"title": "new", "category": "tops", "image": image},
         expect=401)
    call(port, "PUT", "/v1/items/500", {"title": "new", "category": "tops", "image": image},
         {"Authorization": "Bearer wrong"}, expect=401)
    r = call(port, "PUT", "/v1/items/500", {"title": "new item", "category": "tops",
                                             "sku": "N1", "image": image}, AUTH)
    tap.ok(r["items"] == n_items + 1, "upsert adds an item")
    r = call(port, "POST", "/v1/search", {"image": image, "limit": 2})
    top = {x["id"]: x["score"] for x in r["results"]}  # item 4 has the same image
    tap.ok(top.get(500, 0) > 0.999, "the new item is its own nearest neighbour", top)
    status, hdrs, data = request(port, "GET", "/images/500")
    tap.ok(status == 200 and hdrs["content-type"] == "image/png" and data[:4] == b"\x89PNG",
           "uploaded image served by id")
    status, hdrs, data = request(port, "GET", "/images/1")
    tap.ok(status == 200 and hdrs["content-type"].startswith("image/"), "catalogue image served")
    call(port, "GET", "/images/424242", expect=404)
    call(port, "DELETE", "/v1/items/500", headers=AUTH)
    call(port, "DELETE", "/v1/items/500", headers=AUTH, expect=404)



def check_journal_survives_kill(exe, testdata, image):
    """Acknowledged admin changes live in the state directory's journal: a kill -9 loses none,
    and the index directory is never written."""
    work = workdir()
    server = Server(exe, testdata, work)
    if not tap.ok(server.wait_ready(), "tailord starts (journal)", server.error_log()):
        server.stop()
        return
    index_files = sorted(os.listdir(server.index))
    call(server.port, "PUT", "/v1/items/600", {"title": "kept", "category": "bags",
                                               "subcategory": "totes", "image": image}, AUTH)
    call(server.port, "DELETE", "/v1/items/1", headers=AUTH)
    server.proc.kill()  # SIGKILL: no drain, no snapshot
    server.stop()
    again = Server(exe, testdata, work)
    if not tap.ok(again.wait_ready(), "restarts after kill -9", again.error_log()):
        again.stop()
        return
    r = call(again.port, "POST", "/v1/search",
             {"image": image, "filter": {"category": "bags", "subcategory": "totes"}})
    tap.ok([x["id"] for x in r["results"]] == [600] and r["results"][0]["title"] == "kept",
           "upsert acknowledged before kill -9 is served after restart", r["results"])
    status, _, data = request(again.port, "GET", "/images/600")
    tap.ok(status == 200 and data[:4] == b"\x89PNG", "its uploaded image survives")
    call(again.port, "GET", "/images/1", expect=404)
    index = call(again.port, "GET", "/v1/info")["engine"]["index"]
    tap.ok(index["items"] == server.items and index["journal_entries"] == 2 and
           index["categories"].get("bags") == 1, "journal replayed: one added, one removed", index)
    tap.ok(sorted(os.listdir(again.index)) == index_files and
           os.path.isfile(os.path.join(work, "index.state", "journal.jsonl")),
           "changes journalled beside the index directory, which is unchanged")
    verify = subprocess.run([os.environ["TAILOR"], "index", "verify", again.index],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tap.ok(verify.returncode == 0, "the index directory still verifies", verify.stdout)
    again.stop()
    other = Server(exe, testdata, work, model="tailor-tiny")  # index built for clip-tiny
    other.wait_ready(timeout=10)
    log = other.error_log()
    tap.ok(other.proc.poll() is not None or "rebuild it with" in log,
           "an index directory built for another model is refused", log[-500:])
    tap.ok("was built with model checksum" in log, "the refusal names the model checksum",
           log[-500:])
    other.stop()
    shutil.rmtree(work, ignore_errors=True)


def same_scores(got, want, tol=1e-5):
    """Whether two result lists hold the same items with scores within tol."""
    got_scores = {r["id"]: r["score"] for r in got}
    want_scores = {r["id"]: r["score"] for r in want}
    return got_scores.keys() == want_scores.keys() and all(
        abs(got_scores[i] - want_scores[i]) <= tol for i in want_scores)


def check_batched_ntm_turns(port):
    """Turns that arrive together step their sessions in one NTM batch: each answer scores as
    a twin session stepped alone, and two turns of one session run one after the other. (The
    NTM step is bit-exact in a batch; the text embeddings batched with it may differ in the
    last bits, hence the tolerance.)"""
    texts = ["a red dress", "blue jeans", "a warm coat", "white sneakers"]
    alone = [call(port, "POST", "/v1/sessions", {}, expect=201)["session_id"] for _ in texts]
    together = [call(port, "POST", "/v1/sessions", {}, expect=201)["session_id"] for _ in texts]
    want = [call(port, "POST", f"/v1/sessions/{sid}/turns", {"text": text})["results"]
            for sid, text in zip(alone, texts)]
    want_second = call(port, "POST", f"/v1/sessions/{alone[0]}/turns",
                       {"text": texts[0]})["results"]
    turns = list(zip(together, texts)) + [(together[0], texts[0])]
    answers = [None] * len(turns)

    def post(i):
        sid, text = turns[i]
        answers[i] = request(port, "POST", f"/v1/sessions/{sid}/turns", {"text": text})

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(turns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not tap.ok(all(a and a[0] == 200 for a in answers), "turns sent together all succeed",
                  [a and a[:1] + (a[2][:200],) for a in answers]):
        return
    bodies = [json.loads(a[2]) for a in answers]
    same = all(same_scores(b["results"],
                           want[i % len(texts)] if b["turn"]["turn"] == 1 else want_second)
               for i, b in enumerate(bodies))
    tap.ok(same, "each session's results equal its twin's stepped alone", bodies)
    tap.ok(sorted([bodies[0]["turn"]["turn"], bodies[-1]["turn"]["turn"]]) == [1, 2] and
           call(port, "GET", f"/v1/sessions/{together[0]}")["turn_count"] == 2,
           "two turns of one session sent together both count", bodies)


def check_ntm_sessions(exe, testdata):
    """Sessions on a checkpoint with adapters, heads and a trained-layout CM-NTM (random
    weights) and a tokenizer: turns step the NTM (alone and batched), and its state survives a
    restart."""
    work = workdir()
    model = os.path.join(work, "ntm-model")
    made = subprocess.run([os.environ["MAKE_RANDOM_CLIP"], model, "--preset", "tiny",
                           "--adapters", "8", "--vocab", os.path.join(ROOT, "model", "vocab")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not tap.ok(made.returncode == 0, "make_random_clip writes an NTM checkpoint", made.stdout):
        return
    persist = os.path.join(work, "sessions.jsonl")
    server = Server(exe, testdata, work, ["--sessions.persist", persist, "--batch.window_ms", "100"],
                    model=model)
    if not tap.ok(server.wait_ready(), "tailord serves the NTM checkpoint", server.error_log()):
        server.stop()
        return
    caps = call(server.port, "GET", "/v1/info")["engine"]["capabilities"]
    tap.ok(caps["session_memory"] == "cascade_ntm", "sessions use the CM-NTM", caps)
    # sid is restarted between turns 2 and 3; ref takes the same three turns without a restart
    sid, ref = (call(server.port, "POST", "/v1/sessions", {}, expect=201)["session_id"]
                for _ in range(2))
    for session in (sid, ref):
        t1 = call(server.port, "POST", f"/v1/sessions/{session}/turns", {"text": "a red dress"})
        t2 = call(server.port, "POST", f"/v1/sessions/{session}/turns",
                  {"text": "shorter", "reference_item_id": 2})
    tap.ok(t1["results"] and t2["turn"]["turn"] == 2, "two NTM turns rank the catalogue",
           [t1, t2])
    r3 = call(server.port, "POST", f"/v1/sessions/{ref}/turns", {"text": "in green"})
    check_batched_ntm_turns(server.port)
    server.stop()
    again = Server(exe, testdata, work, ["--sessions.persist", persist], model=model)
    tap.ok(again.wait_ready(), "restarts with the NTM checkpoint", again.error_log())
    t3 = call(again.port, "POST", f"/v1/sessions/{sid}/turns", {"text": "in green"})
    tap.ok(t3["turn"]["turn"] == 3, "the restored NTM session takes turn 3", t3)
    ranked = [(r["id"], r["score"]) for r in t3["results"]]
    tap.ok(ranked and ranked == [(r["id"], r["score"]) for r in r3["results"]],
           "its turn 3 ranks exactly as an uninterrupted session's", (t3, r3))
    again.stop()
    shutil.rmtree(work, ignore_errors=True)


def check_tasks_zero_shot(port, image):
    labels = ["dress", "sneaker", "blazer", "handbag"]
    r = call(port, "POST", "/v1/classify", {"image": image, "labels": labels})
    probs = [p["probability"] for p in r["predictions"]]
    tap.ok(sorted(p["label"] for p in r["predictions"]) == sorted(labels) and
           abs(sum(probs) - 1) < 1e-4 and probs == sorted(probs, reverse=True),
           "zero-shot classify: a distribution over the given labels, most probable first")
    call(port, "POST", "/v1/classify", {"image": image}, expect=501)
    call(port, "POST", "/v1/caption", {"image": image}, expect=501)


def check_tasks_tailor_tiny(exe, testdata, image):
    """The FAME-ViL heads of tailor-tiny (no tokenizer: image-only calls)."""
    work = workdir()
    server = Server(exe, testdata, work, model="tailor-tiny")
    if not tap.ok(server.wait_ready(), "tailord serves tailor-tiny", server.error_log()):
        server.stop()
        return
    caps = call(server.port, "GET", "/v1/info")["engine"]["capabilities"]
    tap.ok(caps["caption"] and caps["classify_head"] and not caps["embed_text"],
           "capabilities of tailor-tiny", caps)
    greedy = call(server.port, "POST", "/v1/caption", {"image": image, "max_tokens": 12})
    tap.ok(1 < len(greedy["token_ids"]) <= 12, "caption within max_tokens", greedy)
    again = call(server.port, "POST", "/v1/caption", {"image": image, "max_tokens": 12})
    tap.ok(again == greedy, "greedy captions are deterministic")
    call(server.port, "POST", "/v1/caption", {"image": image, "beam": 3, "max_tokens": 8})
    call(server.port, "POST", "/v1/classify", {"image": image}, expect=501)  # no tokenizer
    call(server.port, "POST", "/v1/search", {"text": "x"}, expect=501)  # no tokenizer
    r = call(server.port, "POST", "/v1/search", {"image": image, "limit": 3})
    tap.ok(len(r["results"]) == 3, "image search with tailor-tiny")
    tap.ok(server.stop() == 0, "tailor-tiny server exits cleanly")
    shutil.rmtree(work, ignore_errors=True)


def check_static(port):
    for path, kind in [("/", "text/html"), ("/app.js", "text/javascript"),
                       ("/style.css", "text/css")]:
        status, hdrs, data = request(port, "GET", path)
        tap.ok(status == 200 and hdrs["content-type"].startswith(kind) and data and
               hdrs.get("x-request-id"), f"GET {path} serves {kind}")


def check_request_ids(port):
    status, hdrs, _ = request(port, "GET", "/healthz", headers={"X-Request-Id": "client-id_1.2"})
    tap.ok(hdrs.get("x-request-id") == "client-id_1.2", "a safe client request id is echoed")
    status, hdrs, _ = request(port, "GET", "/healthz", headers={"X-Request-Id": "bad id<>"})
    tap.ok(hdrs.get("x-request-id") not in (None, "bad id<>"), "an unsafe one is replaced")


def traffic(port, stop, failures, counts):
    while not stop.is_set():
        status, _, _ = request(port, "POST", "/v1/search", {"text": "dress", "limit": 2})
        counts[0] += 1
        if status != 200:
            failures.append(status)


def check_reload_under_traffic(server, swaps=10):
    """swaps times: a new directory is renamed into place at index_dir, as a rebuild publishes
    one, and tailord is told to reload (SIGHUP and /v1/admin/reload in turn)."""
    stop, failures, counts = threading.Event(), [], [0]
    workers = [threading.Thread(target=traffic, args=(server.port, stop, failures, counts))
               for _ in range(4)]
    for w in workers:
        w.start()
    def reloads():
        return server.error_log().count('"event":"reload","msg":"serving')

    def wait_for_reloads(n, timeout=30):
        deadline = time.time() + timeout
        while reloads() < n and time.time() < deadline:
            time.sleep(0.05)

    time.sleep(0.3)
    for n in range(swaps):
        fresh = f"{server.index}.new{n}"
        shutil.copytree(server.index, fresh)
        os.rename(server.index, f"{server.index}.old{n}")  # still served until the swap
        os.rename(fresh, server.index)
        if n % 2:
            call(server.port, "POST", "/v1/admin/reload", headers=AUTH, expect=202)
        else:
            server.signal(signal.SIGHUP)
        wait_for_reloads(n + 2)  # the first load, then one per swap
    time.sleep(0.3)
    stop.set()
    for w in workers:
        w.join()
    tap.ok(not failures and counts[0] > 20 and reloads() == swaps + 1,
           f"{counts[0]} searches during {swaps} index swaps and reloads, none failed",
           (failures[:5], reloads()))


def check_overload(exe, testdata):
    """A tiny queue: concurrent work gets 503/429 with Retry-After, and nothing else fails."""
    work = workdir()
    server = Server(exe, testdata, work, ["--queue.max", "2", "--queue.bulk_max", "1",
                                          "--batch.window_ms", "50"])
    if not tap.ok(server.wait_ready(), "tailord with a queue of 2 starts", server.error_log()):
        server.stop()
        return
    results = []

    def one(path, body):
        status, hdrs, data = request(server.port, "POST", path, body)
        results.append((path, status, hdrs.get("retry-after"), data))

    texts = ["t%d" % i for i in range(8)]
    threads = [threading.Thread(target=one, args=("/v1/search", {"text": "dress %d" % i}))
               for i in range(24)]
    threads += [threading.Thread(target=one, args=("/v1/embed", {"texts": texts}))
                for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(set((p, s) for p, s, _, _ in results))
    refused = [r for r in results if r[1] in (429, 503)]
    tap.ok(refused and all(r[2] == "1" for r in refused) and
           all(s in (200, 429, 503) for _, s, _, _ in results) and
           all((p == "/v1/embed") == (s == 429) for p, s, _, _ in refused),
           f"overload answered 503 (interactive) / 429 (bulk) with Retry-After: {codes}")
    for path, status, _, data in results:
        problems = spec.check("POST", path, status, {"x-request-id": "x"}, data)
        if problems:
            tap.ok(False, f"overload answer of {path} matches openapi.yaml", problems)
            break
    status, _, _ = request(server.port, "POST", "/v1/search", {"text": "dress"})
    tap.ok(status == 200, "served again once the queue drains")
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


def check_drain_under_traffic(exe, testdata):
    """SIGTERM while searches are in flight: every request the server took answers 200 with a
    whole body; connections it had not taken yet are refused or reset (the listening socket
    closes when draining starts), which clients see as connection errors, never as HTTP ones."""
    work = workdir()
    server = Server(exe, testdata, work, ["--batch.window_ms", "20"])
    if not tap.ok(server.wait_ready(), "tailord for the drain test starts"):
        server.stop()
        return
    outcomes = []

    def searcher():
        for _ in range(200):
            try:
                status, _, data = request(server.port, "POST", "/v1/search", {"text": "coat"})
                outcomes.append(status if json.loads(data).get("results") is not None else -1)
            except (ConnectionRefusedError, ConnectionResetError,
                    http.client.RemoteDisconnected):
                outcomes.append("not taken")
                return
            except (OSError, ValueError) as e:
                outcomes.append(repr(e))
                return

    threads = [threading.Thread(target=searcher) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    code = server.stop()
    for t in threads:
        t.join()
    bad = [o for o in outcomes if o not in (200, "not taken")]
    tap.ok(code == 0 and not bad and outcomes.count(200) > 10,
           f"SIGTERM under traffic: {outcomes.count(200)} answered, none failed", bad[:5])
    shutil.rmtree(work, ignore_errors=True)


def main():
    exe, testdata = sys.argv[1], sys.argv[2]
    work = workdir()
    persist = os.path.join(work, "sessions.jsonl")
    server = Server(exe, testdata, work, ["--sessions.persist", persist])
    if not tap.ok(server.wait_ready(), "tailord starts and becomes ready", server.error_log()):
        server.stop()
        return tap.done()
    image = image_b64(os.path.join(testdata, "clip-tiny", "images", "c_gray_rings_40x40.png"))
    check_health_and_info(server.port, server.items)
    check_search(server.port, image)
    check_embed(server.port, image)
    sid = check_sessions(server.port)
    check_admin_and_images(server.port, image, server.items)
    check_tasks_zero_shot(server.port, image)
    check_static(server.port)
    check_request_ids(server.port)
    check_reload_under_traffic(server)
    code = server.stop()
    tap.ok(code == 0 and '"event":"drain"' in server.error_log(), "SIGTERM drains and exits 0",
           server.error_log()[-500:])
    tap.ok(os.path.exists(persist), "sessions.persist written on SIGTERM")
    again = Server(exe, testdata, work, ["--sessions.persist", persist])
    tap.ok(again.wait_ready(), "restarts")
    got = call(again.port, "GET", f"/v1/sessions/{sid}")
    tap.ok(isinstance(got, dict) and got.get("turn_count") == 2, "session restored after restart")
    t3 = call(again.port, "POST", f"/v1/sessions/{sid}/turns", {"text": "in green"})
    tap.ok(t3["turn"]["turn"] == 3, "restored session takes turn 3")
    again.stop()
    shutil.rmtree(work, ignore_errors=True)
    check_tasks_tailor_tiny(exe, testdata, image)
    check_journal_survives_kill(exe, testdata, image)
    check_ntm_sessions(exe, testdata)
    check_overload(exe, testdata)
    check_drain_under_traffic(exe, testdata)
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
