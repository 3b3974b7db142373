#!/usr/bin/env python3
"""tailord against malformed requests: broken JSON, wrong types, unknown fields, huge and
negative numbers, invalid base64, non-image and truncated image bytes, a decompression bomb,
a 50 MB body, slow-loris headers, path traversal in ids, wrong and missing API keys and
unknown sessions. Each must get its documented 4xx with a JSON error; the server must stay
healthy throughout. usage: test_bad_input.py TAILORD_EXE TESTDATA_DIR"""
import base64
import json
import os
import shutil
import socket
import struct
import sys
import threading
import time
import zlib

from tailord_harness import (API_KEY, OpenApi, Server, Tap, parse_raw_response, raw_request,
                             request, workdir)

tap = Tap()
spec = OpenApi()
ERROR_SCHEMA = spec.doc["components"]["schemas"]["Error"]


def png_with_size(width, height):
    """A PNG whose header claims width x height over a tiny compressed body."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode()


def expect_error(port, method, path, body, status, code, headers=None, name=None):
    hdrs = dict(headers or {})
    if body is not None and "Content-Type" not in hdrs:
        hdrs["Content-Type"] = "application/json"
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    try:
        got, rh, data = request(port, method, path, body, hdrs)
    except OSError as e:
        return tap.ok(False, name or f"{method} {path}", repr(e))
    problems = []
    try:
        value = json.loads(data)
        problems += spec.validate(value, ERROR_SCHEMA)
        got_code = value.get("error", {}).get("code")
    except (ValueError, AttributeError):
        got_code, problems = None, [f"not a JSON error: {data[:100]!r}"]
    if not rh.get("x-request-id"):
        problems.append("no X-Request-Id")
    label = name or f"{method} {path[:60]} {str(body)[:50]!r}"
    return tap.ok(got == status and got_code == code and not problems,
                  f"{label} -> {got} {got_code} (want {status} {code})", "\n".join(problems))


def broken_json_cases():
    bodies = ["", "{", "}", "[", "[]", "null", "true", "1", "\"text\"", "{\"text\":}",
              "{\"text\" \"a\"}", "{'text': 'a'}", "{\"text\":\"a\",}", "{\"text\":\"a\"} x",
              "{\"text\":\"\\ud800\"}", "\xff\xfe{}", "{\"text\":\"a\",\"text\":\"b\"}",
              "{\"text\":NaN}", "{\"limit\":01}", "{\"text\":\"a\\u0000b\"}"]
    return bodies


def main():
    exe, testdata = sys.argv[1], sys.argv[2]
    work = workdir()
    server = Server(exe, testdata, work, ["--limits.body_bytes", "1048576"])
    if not tap.ok(server.wait_ready(), "tailord starts", server.error_log()):
        server.stop()
        return tap.done()
    port = server.port
    status, _, data = request(port, "POST", "/v1/sessions", {})
    sid = json.loads(data)["session_id"]
    auth = {"Authorization": "Bearer " + API_KEY}
    with open(os.path.join(testdata, "clip-tiny", "images", "b_portrait_checker_75x131_q90_420.jpg"), "rb") as f:
        jpeg = f.read()
    png = png_with_size(40, 40)

    # broken JSON on every JSON endpoint
    endpoints = [("POST", "/v1/search", {}), ("POST", "/v1/embed", {}),
                 ("POST", f"/v1/sessions/{sid}/turns", {}), ("PUT", "/v1/items/7", auth)]
    for method, path, hdrs in endpoints:
        for body in broken_json_cases():
            expect_error(port, method, path, body, 400, "bad_json", hdrs)
    expect_error(port, "POST", "/v1/sessions", "{", 400, "bad_json")
    expect_error(port, "POST", "/v1/sessions", "[1]", 400, "bad_json")
    expect_error(port, "POST", "/v1/admin/reload", "nope", 400, "bad_json", auth)

    # wrong types
    wrong = [1, 1.5, "s", [1], {"a": 1}, None, True]
    fields = {"text": "s", "image": "s", "item_id": 1, "filter": {"a": 1}, "limit": 1,
              "offset": 1}
    for field, good in fields.items():
        for value in wrong:
            if type(value) is type(good):
                continue
            expect_error(port, "POST", "/v1/search", {field: value}, 400, "invalid_field")
    for value in wrong:
        if not isinstance(value, str):
            expect_error(port, "POST", "/v1/search", {"text": "a", "filter": {"category": value}},
                         400, "invalid_field")
    for value in [1, "s", {"a": 1}, None]:
        expect_error(port, "POST", "/v1/embed", {"texts": value}, 400, "invalid_field")
        if not isinstance(value, str):
            expect_error(port, "POST", "/v1/embed", {"texts": [value]}, 400, "invalid_field")
    expect_error(port, "PUT", "/v1/items/7", {"title": 1, "category": "c", "image": b64(png)},
                 400, "invalid_field", auth)

    # unknown fields
    for body in [{"text": "a", "txt": "b"}, {"query": "a"}, {"text": "a", "filter": {"colour": "red"}},
                 {"text": "a", "extra": None}, {"text": "a", "LIMIT": 3}]:
        expect_error(port, "POST", "/v1/search", body, 400, "unknown_field")
    expect_error(port, "POST", "/v1/embed", {"texts": ["a"], "vectors": []}, 400, "unknown_field")
    expect_error(port, "POST", f"/v1/sessions/{sid}/turns", {"text": "a", "item_id": 3}, 400,
                 "unknown_field")
    expect_error(port, "POST", "/v1/sessions", {"user": "x"}, 400, "unknown_field")
    expect_error(port, "PUT", "/v1/items/7", {"title": "t", "category": "c", "image": b64(png),
                                              "price": 3}, 400, "unknown_field", auth)

    # numbers out of bounds
    for field, value in [("limit", 0), ("limit", -1), ("limit", 101), ("limit", 10 ** 15),
                         ("offset", -1), ("offset", 1001), ("offset", 2 ** 62),
                         ("item_id", -1), ("item_id", -(2 ** 62))]:
        expect_error(port, "POST", "/v1/search", {"text": "a", field: value}, 400,
                     "invalid_field")
    for text in ['{"text":"a","limit":1e400}', '{"text":"a","limit":99999999999999999999999}',
                 '{"item_id":-99999999999999999999999}']:
        expect_error(port, "POST", "/v1/search", text, 400, "bad_json")
    expect_error(port, "POST", "/v1/search", {"text": "a", "limit": 2.0}, 400, "invalid_field")
    expect_error(port, "POST", "/v1/search", {"text": ""}, 400, "invalid_field")
    expect_error(port, "POST", "/v1/search", {"text": "x" * 5000}, 400, "invalid_field")
    expect_error(port, "POST", "/v1/search", {}, 400, "missing_field")
    expect_error(port, "POST", "/v1/search", {"limit": 3}, 400, "missing_field")
    expect_error(port, "POST", "/v1/search", {"image": b64(png), "item_id": 3}, 400,
                 "invalid_field")
    expect_error(port, "POST", "/v1/embed", {}, 400, "missing_field")
    expect_error(port, "POST", "/v1/embed", {"texts": []}, 400, "missing_field")
    expect_error(port, "POST", "/v1/embed", {"texts": ["a"] * 65}, 400, "invalid_field")
    expect_error(port, "POST", f"/v1/sessions/{sid}/turns", {}, 400, "missing_field")
    expect_error(port, "PUT", "/v1/items/7", {"title": "t"}, 400, "missing_field", auth)

    # invalid base64
    for bad in ["!!!!", "abc", "ab=c", "a===", "====", "YWJj\nZGVm", "YW Jj", "YWJjZA",
                "data:image/png;base64,iVBORw0K", "*" * 40, "\u00e9\u00e9\u00e9\u00e9"]:
        expect_error(port, "POST", "/v1/search", {"image": bad}, 400, "invalid_base64")
    expect_error(port, "POST", "/v1/embed", {"images": ["@@@@"]}, 400, "invalid_base64")
    expect_error(port, "POST", "/v1/search", {"image": ""}, 400, "invalid_base64")

    # bytes that are not images, truncated images, a decompression bomb
    not_images = [b"hello world!", b"\0" * 64, b"GIF89a" + b"\0" * 32, b"%PDF-1.4 ...",
                  jpeg[:100], jpeg[:len(jpeg) // 2], png[:30], b"RIFF\x10\0\0\0WEBPVP8 ",
                  b"\xff\xd8\xff" + b"\0" * 50]
    for data in not_images:
        expect_error(port, "POST", "/v1/search", {"image": b64(data)}, 422, "invalid_image")
    expect_error(port, "POST", "/v1/embed", {"texts": ["ok"], "images": [b64(b"nope")]}, 422,
                 "invalid_image")
    expect_error(port, "POST", f"/v1/sessions/{sid}/turns", {"image": b64(b"nope")}, 422,
                 "invalid_image")
    for w, h in [(100000, 100000), (65535, 65535), (20000, 3000)]:
        expect_error(port, "POST", "/v1/search", {"image": b64(png_with_size(w, h))}, 413,
                     "image_too_large", name=f"decompression bomb {w}x{h}")

    # bodies over the limit
    for size, name in [(50 * 1024 * 1024, "50 MB body"), (2_000_000, "2 MB body")]:
        head = (f"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {size}\r\n\r\n").encode()
        raw = raw_request(port, [head, b"{" + b" " * 65536], pause=0.05)
        st, hd, body = parse_raw_response(raw)
        tap.ok(st == 413 and b"body_too_large" in body and hd.get("x-request-id"),
               f"{name} -> {st}", body[:200])
    chunked = (b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"10000\r\n" + b" " * 65536 + b"\r\n"
    raw = raw_request(port, [chunked] + [piece] * 40 + [b"0\r\n\r\n"], pause=0.001)
    st, hd, body = parse_raw_response(raw)
    tap.ok(st == 413 and b"body_too_large" in body and hd.get("x-request-id"),
           f"chunked 2.5 MiB body over the 1 MiB limit -> {st}", body[:200])
    # past 4 times the limit the rest is no longer read: the connection is cut
    raw = raw_request(port, [chunked] + [piece] * 100, pause=0.001)
    tap.ok(raw == b"", f"chunked body past 4x the limit cut ({len(raw)} bytes of reply)")
    status, _, _ = request(port, "GET", "/healthz")
    tap.ok(status == 200, "healthz after the chunked bodies")
    raw = raw_request(port, b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 99999999999\r\n\r\n")
    st, hd, body = parse_raw_response(raw)
    tap.ok(st == 413 and b"body_too_large" in body, "huge Content-Length refused before reading")

    # URLs, methods, media types
    expect_error(port, "GET", "/v1/search", None, 405, "method_not_allowed")
    expect_error(port, "DELETE", "/healthz", None, 405, "method_not_allowed")
    expect_error(port, "GET", "/v2/search", None, 404, "not_found")
    expect_error(port, "GET", "/nothing/here", None, 404, "not_found")
    expect_error(port, "GET", "/" + "a" * 3000, None, 414, "uri_too_long")
    expect_error(port, "POST", "/v1/search", '{"text":"a"}', 415, "unsupported_media_type",
                 {"Content-Type": "text/plain"})
    expect_error(port, "POST", "/v1/search", 'text=a', 415, "unsupported_media_type",
                 {"Content-Type": "application/x-www-form-urlencoded"})

    # path traversal and malformed ids
    for path in ["/images/../../etc/passwd", "/images/..%2f..%2fetc%2fpasswd", "/images/%2e%2e",
                 "/images/1/../2", "/images/-1", "/images/1e3", "/images/0x10",
                 "/images/99999999999999999999", "/images/%00", "/images/etc%2Fpasswd"]:
        raw = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        st, hd, body = parse_raw_response(raw)
        tap.ok(st in (400, 404) and b'"error"' in body and b"root:" not in body,
               f"traversal {path} -> {st}")
    for path in ["/v1/sessions/../../etc", "/v1/sessions/%2e%2e%2f", "/v1/sessions/ABCDEF",
                 "/v1/sessions/" + "g" * 32, "/v1/sessions/" + "a" * 33]:
        raw = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        st, hd, body = parse_raw_response(raw)
        tap.ok(st in (400, 404) and b'"error"' in body, f"session id {path[:50]} -> {st}")
    expect_error(port, "DELETE", "/v1/items/abc", None, 400, "bad_request", auth)
    expect_error(port, "DELETE", "/v1/items/-5", None, 400, "bad_request", auth)

    # API keys
    bad_keys = [None, "", "Bearer", "Bearer ", "Basic " + b64(b"a:b"), "Bearer wrong",
                "Bearer " + API_KEY[:-1], "Bearer " + API_KEY + "x", "bearer " + API_KEY,
                "Bearer  " + API_KEY]
    for key in bad_keys:
        hdrs = {} if key is None else {"Authorization": key}
        expect_error(port, "POST", "/v1/admin/reload", None, 401, "unauthorized", hdrs,
                     name=f"reload with key {key!r}")
        expect_error(port, "DELETE", "/v1/items/1", None, 401, "unauthorized", hdrs,
                     name=f"delete with key {key!r}")
    expect_error(port, "PUT", "/v1/items/1", {"title": "t"}, 401, "unauthorized",
                 name="put without key")

    # unknown sessions
    for i in range(5):
        unknown = os.urandom(16).hex()
        expect_error(port, "GET", f"/v1/sessions/{unknown}", None, 404, "session_not_found")
        expect_error(port, "DELETE", f"/v1/sessions/{unknown}", None, 404, "session_not_found")
        expect_error(port, "POST", f"/v1/sessions/{unknown}/turns", {"text": "a"}, 404,
                     "session_not_found")

    # slow-loris: idle and trickling connections are closed; others are served meanwhile
    sockets = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sockets.append(s)
    t0 = time.time()
    status, _, _ = request(port, "GET", "/healthz")
    tap.ok(status == 200 and time.time() - t0 < 1, "served while 30 slow clients hang")
    time.sleep(4.5)  # http.timeout_s is 3
    closed = 0
    for s in sockets:
        s.settimeout(1)
        try:
            closed += s.recv(100) == b""
        except (ConnectionResetError, socket.timeout):
            closed += 1
        s.close()
    tap.ok(closed == 30, f"slow clients dropped after the timeout ({closed}/30)")
    # a client that trickles a few header lines and then stalls: dropped without a reply once
    # it has been idle for http.timeout_s (raw_request itself would wait 10 s)
    trickle = [b"POST /v1/search HTTP/1.1\r\n"] + [b"X-Slow: " + b"a" * 10 + b"\r\n"] * 3
    t0 = time.time()
    raw = raw_request(port, trickle, pause=0.2)
    elapsed = time.time() - t0
    tap.ok(raw == b"" and elapsed < 3 + 0.8 + 2,
           f"a trickling then stalled client is dropped after the timeout ({elapsed:.1f} s, "
           f"{len(raw)} bytes)")

    # still healthy
    status, _, _ = request(port, "GET", "/healthz")
    tap.ok(status == 200, "healthz after the abuse")
    status, _, data = request(port, "POST", "/v1/search", {"text": "dress", "limit": 2})
    tap.ok(status == 200 and len(json.loads(data)["results"]) == 2, "search after the abuse")
    tap.ok(server.proc.poll() is None, "tailord still running")
    code = server.stop()
    tap.ok(code == 0, f"clean exit ({code})")
    shutil.rmtree(work, ignore_errors=True)
    print(f"# {tap.n} checks")
    return tap.done()


if __name__ == "__main__":
    sys.exit(main())
