#!/usr/bin/env bash
# Load benchmark of tailord on loopback with wrk (Debian package `wrk`): health checks, text
# searches (batched embedding + ranking) and composed searches, each for DURATION seconds.
# Not a test (nothing is asserted); prints wrk's summaries and the batch-size histogram.
#   tests/integration/bench_load.sh BUILD_DIR [TESTDATA_DIR] [DURATION] [CONNECTIONS]
set -euo pipefail
build=${1:?usage: bench_load.sh BUILD_DIR [TESTDATA_DIR] [DURATION] [CONNECTIONS]}
testdata=${2:-$(dirname "$0")/../../../shared/testdata}
duration=${3:-10}
connections=${4:-32}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

i=0
for f in "$testdata"/clip-tiny/images/*; do
  i=$((i + 1)); cp "$f" "$work/"
  printf '{"id": %d, "title": "item %d", "category": "c%d", "image": "%s"}\n' \
    "$i" "$i" $((i % 2)) "$(basename "$f")" >> "$work/catalog.jsonl"
done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$build/server/tailord" --model_dir "$testdata/clip-tiny" --index_dir "$work" --port "$port" \
  --log_level warn > /dev/null 2> "$work/error.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break; sleep 0.1; done

cat > "$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("BODY")
LUA
echo "== GET /healthz"
wrk -t2 -c"$connections" -d"${duration}s" --latency "http://127.0.0.1:$port/healthz" | sed -n '3,10p;/requests in/p;/Requests\/sec/p'
echo "== POST /v1/search text"
BODY='{"text": "a red summer dress", "limit": 10}' \
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" \
  "http://127.0.0.1:$port/v1/search" | sed -n '3,10p;/requests in/p;/Requests\/sec/p;/Non-2xx/p'
echo "== POST /v1/search item + text (composed)"
BODY='{"item_id": 2, "text": "in blue", "limit": 10}' \
  wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/post.lua" \
  "http://127.0.0.1:$port/v1/search" | sed -n '3,10p;/requests in/p;/Requests\/sec/p;/Non-2xx/p'
echo "== batch sizes"
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^tailord_batch_size_(sum|count)'
