#!/usr/bin/env bash
# Reproduces the HTTP figures in BENCHMARKS.md ("HTTP API", "Queue-
# compatibility listener", "Server-Sent Events fan-out"): one release
# broker with --http and --compat-queue, wrk (Debian package) and the SSE
# load example on this machine, loopback.
# Usage: scripts/bench-http.sh [DATA_DIR]   (default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --bin citystream --example sse_load -p citystream-cli -p citystream-http >/dev/null
target=${CARGO_TARGET_DIR:-target}/release
bin=$target/citystream
data=${1:-$(mktemp -d /tmp/citystream-bench.XXXXXX)}
work=$(mktemp -d /tmp/citystream-wrk.XXXXXX)
"$bin" broker --data-dir "$data" --listen 127.0.0.1:19500 --http 127.0.0.1:16500 \
  --compat-queue 127.0.0.1:15000 --compat-city 127.0.0.1:15001 >"$work/broker.log" 2>&1 &
broker_pid=$!
trap 'kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; rm -rf "$data" "$work"' EXIT
until curl -sf http://127.0.0.1:16500/readyz >/dev/null; do sleep 0.05; done
B=http://127.0.0.1:16500 Q=http://127.0.0.1:15000 C=http://127.0.0.1:15001

# A wrk script posting FILE's content as JSON.
post_lua() {
  printf 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
  printf 'local f = io.open("%s", "r"); wrk.body = f:read("*a"); f:close()\n' "$1"
}
record="$work/record.json"; batch="$work/batch.json"; order="$work/order.json"
printf '{"value":"%s"}' "$(head -c 100 /dev/zero | tr '\0' x)" >"$record"
python3 -c "import json; print(json.dumps([{'value': 'x' * 100} for _ in range(1000)]))" >"$batch"
printf '{"topic":"orders","producer_id":0,"message":{"order":12345,"item":"bread","qty":2}}' >"$order"
city="$work/city.json"
printf '{"topic":"air","data":{"station":"north-air-1","pm25":12.4,"aqi":52},"priority":"low"}' >"$city"
post_lua "$record" >"$work/post.lua"; post_lua "$batch" >"$work/batch.lua"; post_lua "$order" >"$work/qprod.lua"; post_lua "$city" >"$work/publish.lua"

for topic in bench:4 one:1; do
  curl -sf -X POST $B/api/topics -H 'content-type: application/json' \
    -d "{\"name\":\"${topic%:*}\",\"partitions\":${topic#*:}}" >/dev/null
done
echo "## HTTP API: single-record POST, 64 connections, 4 partitions / 1 partition"
wrk -t2 -c64 -d10s -s "$work/post.lua" $B/api/topics/bench/records | grep -E "Latency|Requests/sec"
wrk -t2 -c64 -d10s -s "$work/post.lua" $B/api/topics/one/records | grep -E "Latency|Requests/sec"
echo "## HTTP API: 1,000-record JSON array POST, 16 connections (records/s = requests/s x 1000)"
wrk -t2 -c16 -d10s -s "$work/batch.lua" $B/api/topics/bench/records | grep -E "Latency|Requests/sec"

curl -sf -X POST $Q/producer/register -H 'content-type: application/json' -d '{"topic":"orders"}' >/dev/null
curl -sf -X POST $Q/consumer/register -H 'content-type: application/json' -d '{"topic":"orders"}' >/dev/null
echo "## queue compatibility: POST /producer/produce, 16 and 64 connections; GET /size, 16"
wrk -t2 -c16 -d10s -s "$work/qprod.lua" $Q/producer/produce | grep -E "Latency|Requests/sec|Non-2xx"
wrk -t2 -c64 -d10s -s "$work/qprod.lua" $Q/producer/produce | grep -E "Latency|Requests/sec|Non-2xx"
wrk -t2 -c16 -d5s "$Q/size?topic=orders&consumer_id=0" | grep -E "Latency|Requests/sec|Non-2xx"

curl -sf -X POST $C/publish -H 'content-type: application/json' --data-binary @"$city" >/dev/null
echo "## city compatibility: POST /publish, 16 and 64 connections"
wrk -t2 -c16 -d10s -s "$work/publish.lua" $C/publish | grep -E "Latency|Requests/sec|Non-2xx"
wrk -t2 -c64 -d10s -s "$work/publish.lua" $C/publish | grep -E "Latency|Requests/sec|Non-2xx"

echo "## SSE fan-out: 1,000 streams at 100 records/s; 10,000 streams at 10 records/s"
"$target/examples/sse_load" 127.0.0.1:16500 1000 100 10 "$broker_pid"
"$target/examples/sse_load" 127.0.0.1:16500 10000 10 10 "$broker_pid"
echo "# load: $(uptime)"
