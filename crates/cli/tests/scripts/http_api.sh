#!/usr/bin/env bash
# The curl examples of docs/http-api.md against a running broker's HTTP API
# ($1 = host:port). Prints one line per check; exits non-zero at the first
# answer that is not what the docs say.
set -euo pipefail
B="http://$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() { # expect NAME ACTUAL PATTERN
  grep -qE -- "$3" <<<"$2" || fail "$1: got $2"
  echo "ok $1"
}

out=$(curl -s -X POST "$B/api/topics" -H 'content-type: application/json' -d '{"name":"air","partitions":2}')
expect create "$out" '"name":"air".*"partitions":\[\{"partition":0'
out=$(curl -s -X POST "$B/api/topics/air/records" -H 'content-type: application/json' \
      -d '[{"key":"station-1","value":{"pm25":12.5}},{"key":"station-2","value":"9.1"}]')
expect produce-array "$out" '^\{"records":\[\{"partition":[01],"offset":0\},\{"partition":[01],"offset":[01]\}\]\}$'
out=$(printf '{"key":"station-1","value":{"pm25":13}}\n' |
      curl -s -X POST "$B/api/topics/air/records" -H 'content-type: application/x-ndjson' --data-binary @-)
expect produce-ndjson "$out" '"offset":[0-9]'
out=$(curl -s -X POST "$B/api/topics/air/records?key=station-3&partition=0" -H 'content-type: text/plain' -d 'raw text')
expect produce-raw "$out" '"partition":0'
out=$(curl -s "$B/api/topics/air/records?partition=0&offset=0&limit=10")
expect read "$out" '"value":"raw text"'
out=$(curl -s -X POST "$B/api/groups/dashboard/records?topic=air&limit=10")
expect group-read "$out" '"committed":\[\{"topic":"air"'
out=$(curl -s -X POST "$B/api/groups/dashboard/records?topic=air&limit=10")
expect group-read-again "$out" '^\{"records":\[\],"committed":\[\]\}$'
out=$(curl -s "$B/api/groups/dashboard")
expect group-lag "$out" '"lag":0'
out=$(curl -s -i "$B/api/topics/nope/records")
expect unknown-topic "$out" 'HTTP/1.1 404'
expect unknown-topic-body "$out" '"code":"UNKNOWN_TOPIC"'
out=$(curl -s -N --max-time 2 "$B/api/topics/air/stream?from=earliest" || true)
expect stream "$out" '^id: '
out=$(curl -s "$B/readyz")
expect ready "$out" '"status":"ready"'
out=$(curl -s "$B/metrics")
expect metrics "$out" 'citystream_records_in_total\{topic="air"\}'
out=$(curl -s "$B/api/openapi.json")
expect openapi "$out" '"/api/topics/\{topic\}/stream"'
