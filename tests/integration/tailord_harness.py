"""Shared by tailord's integration tests: a catalogue index directory made from the test
images, a real tailord on a free loopback port, an HTTP client over raw sockets (so malformed
requests can be sent too), a checker of responses against proto/openapi.yaml (the subset of
JSON Schema that file uses), and TAP output. Not for: unit tests of C modules."""
import atexit
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
API_KEY = "integration-test-key"


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=""):
        self.n += 1
        if not cond:
            self.failed += 1
        print(("ok" if cond else "not ok") + f" {self.n} - {name}")
        if not cond and detail:
            for line in str(detail).splitlines()[:20]:
                print("#   " + line)
        sys.stdout.flush()
        return cond

    def done(self):
        print(f"1..{self.n}")
        return 1 if self.failed else 0


def make_index(testdata, directory):
    """Writes catalog.jsonl over the test images, two categories, three subcategories."""
    sources = sorted(os.path.join(testdata, "clip-tiny", "images", f)
                     for f in os.listdir(os.path.join(testdata, "clip-tiny", "images")))
    sources += sorted(os.path.join(ROOT, "examples", "images", f)
                      for f in os.listdir(os.path.join(ROOT, "examples", "images")))
    lines = []
    for i, src in enumerate(sources, start=1):
        name = os.path.basename(src)
        shutil.copyfile(src, os.path.join(directory, name))
        lines.append(json.dumps({"id": i, "sku": f"SKU{i}", "title": f"item {name}",
                                 "category": "tops" if i % 2 else "shoes",
                                 "subcategory": f"sub{i % 3}", "image": name}))
    with open(os.path.join(directory, "catalog.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(sources)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A tailord child process; its logs go to files in workdir."""

    def __init__(self, exe, testdata, workdir, extra=(), model="clip-tiny"):
        self.exe, self.workdir = exe, workdir
        self.index = os.path.join(workdir, "index")
        if not os.path.isdir(self.index):
            os.mkdir(self.index)
            self.items = make_index(testdata, self.index)
        self.port = free_port()
        self.args = [exe, "--model_dir", os.path.join(testdata, model),
                     "--index_dir", self.index, "--port", str(self.port), "--threads", "1",
                     "--api_keys", API_KEY, "--http.timeout_s", "3", *extra]
        self.access = open(os.path.join(workdir, "access.log"), "a")
        self.errors = open(os.path.join(workdir, "error.log"), "a")
        self.proc = subprocess.Popen(self.args, stdout=self.access, stderr=self.errors)
        atexit.register(self._kill_if_running)  # a test that dies must not leave tailord

    def _kill_if_running(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, _ = request(self.port, "GET", "/readyz")
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.access.close()
        self.errors.close()
        return code

    def error_log(self):
        with open(os.path.join(self.workdir, "error.log")) as f:
            return f.read()


def request(port, method, path, body=None, headers=None, timeout=30):
    """One request on its own connection; returns (status, headers dict lower-case, bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def raw_request(port, data, timeout=10, pause=None):
    """Sends raw bytes (in pieces with a pause between, when given) and returns the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        pieces = data if isinstance(data, list) else [data]
        try:
            for piece in pieces:
                s.sendall(piece)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                    m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                    if m and len(rest) >= int(m.group(1)):
                        break
        except (socket.timeout, ConnectionResetError):
            pass
        return b"".join(chunks)


def parse_raw_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        return None, {}, body
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


class OpenApi:
    """Checks responses against proto/openapi.yaml."""

    def __init__(self, path=os.path.join(ROOT, "proto", "openapi.yaml")):
        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self.routes = []
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
            self.routes.append((re.compile(pattern), item))

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            target = self.doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def response_schema(self, method, path, status):
        """(schema or None, problem or None) for this response."""
        path = path.split("?")[0]
        for pattern, item in self.routes:
            if pattern.match(path):
                op = item.get(method.lower())
                if op is None:
                    return None, f"{method} {path} is not in openapi.yaml"
                resp = op["responses"].get(str(status))
                if resp is None:
                    return None, f"status {status} of {method} {path} is not in openapi.yaml"
                content = self.resolve(resp).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                return schema, None
        return None, f"{path} is not in openapi.yaml"

    def validate(self, value, schema, where="$"):
        """A list of problems (empty when value matches schema)."""
        schema = self.resolve(schema)
        if value is None:
            return [] if schema.get("nullable") else [f"{where}: null"]
        problems = []
        t = schema.get("type")
        checks = {"object": lambda v: isinstance(v, dict),
                  "array": lambda v: isinstance(v, list),
                  "string": lambda v: isinstance(v, str),
                  "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
                  "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
                  "boolean": lambda v: isinstance(v, bool)}
        if t and not checks[t](value):
            return [f"{where}: {value!r:.60} is not {t}"]
        if "enum" in schema and value not in schema["enum"]:
            problems.append(f"{where}: {value!r} not in {schema['enum']}")
        if isinstance(value, str):
            if len(value) < schema.get("minLength", 0):
                problems.append(f"{where}: shorter than minLength")
            if len(value) > schema.get("maxLength", 1 << 60):
                problems.append(f"{where}: longer than maxLength")
            if "pattern" in schema and not re.search(schema["pattern"], value):
                problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < schema.get("minimum", float("-inf")):
                problems.append(f"{where}: below minimum")
            if value > schema.get("maximum", float("inf")):
                problems.append(f"{where}: above maximum")
        if isinstance(value, list):
            if len(value) > schema.get("maxItems", 1 << 60):
                problems.append(f"{where}: more than maxItems")
            for i, v in enumerate(value):
                if "items" in schema:
                    problems += self.validate(v, schema["items"], f"{where}[{i}]")
        if isinstance(value, dict):
            props = schema.get("properties", {})
            for key in schema.get("required", []):
                if key not in value:
                    problems.append(f"{where}: missing {key}")
            extra = schema.get("additionalProperties", True)
            for key, v in value.items():
                if key in props:
                    problems += self.validate(v, props[key], f"{where}.{key}")
                elif extra is False:
                    problems.append(f"{where}: unexpected field {key}")
                elif isinstance(extra, dict):
                    problems += self.validate(v, extra, f"{where}.{key}")
        return problems

    def check(self, method, path, status, headers, body):
        """Problems with one response: documented status, X-Request-Id, schema."""
        problems = []
        if not headers.get("x-request-id"):
            problems.append("no X-Request-Id header")
        schema, problem = self.response_schema(method, path, status)
        if problem:
            return problems + [problem]
        if schema is None:
            return problems
        try:
            value = json.loads(body)
        except ValueError as e:
            return problems + [f"body is not JSON: {e}: {body[:80]!r}"]
        return problems + self.validate(value, schema)


def image_b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def workdir():
    return tempfile.mkdtemp(prefix="tailord-test-")
