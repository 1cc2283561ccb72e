#!/usr/bin/env bash
# "Producer modes" figures in BENCHMARKS.md: throughput of `bench produce`
# with the default idempotent producer against `--no-idempotent`, side by
# side, (a) on one release broker (acks=leader, 4 partitions) and (b) on a
# 3-node release cluster (acks=quorum, 6 partitions, replication 3); then
# `bench failover`. Both use 100 B records, 4 producers, batch 256 KiB,
# linger 5 ms and --fsync interval (5 ms), as the single-broker and cluster
# sections do. Each setup starts with one warm-up measurement (not counted),
# then runs ROUNDS rounds; a round measures both modes, in alternating
# order, each on a fresh topic (deleted afterwards), so that noise from the
# shared machine hits both modes alike. The table gives the median
# records/s of each mode, the ratio of the medians, and the median and range
# of the per-round ratios (the two modes of a round ran back to back, so
# their ratio is the least disturbed by the machine's drift). Each row also
# shows the CPU seconds of the load generator and of the brokers, what the
# disk holding the data wrote meanwhile (the whole device: other work on it
# counts too), the 1-minute load average and, on the cluster, leaders per node.
# `bench failover` runs once per probe retry-backoff cap in FAILOVER_BACKOFFS:
# the default 200 ms, and 10 ms (a failover time includes up to one backoff).
# The script exits non-zero if a failover run lost, reordered or duplicated
# an acknowledged record (after printing everything).
# Usage: scripts/bench-producer-modes.sh
# Env: ROUNDS (5), COUNT (4000000 records per measurement), TRIALS (10
# failovers per run), FAILOVER_BACKOFFS ("200 10"), COMMIT (named in the
# header), PORT (9400, the single broker), BASE_PORT (9500, the cluster:
# ports BASE_PORT+1..+3), SETUPS ("single cluster failover", any subset).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin citystream >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/citystream
rounds=${ROUNDS:-5}
count=${COUNT:-4000000}
trials=${TRIALS:-10}
failover_backoffs=${FAILOVER_BACKOFFS:-200 10}
single_address=127.0.0.1:${PORT:-9400}
setups=${SETUPS:-single cluster failover}
data=$(mktemp -d /tmp/citystream-modes-bench.XXXXXX)
results=$data/results # lines: SETUP MODE ROUND RECORDS_PER_S
broker_flags="--fsync interval"
single_pid=
failover_failed=0
measured_pids=()
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
cleanup() {
  stop_cluster
  if [ -n "$single_pid" ]; then kill "$single_pid" 2>/dev/null || true; wait "$single_pid" 2>/dev/null || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

# Refuses to run against a broker someone else left on our ports.
require_free() {
  if "$bin" topic list --broker "$1" >/dev/null 2>&1; then
    echo "a broker already answers on $1; set PORT / BASE_PORT" >&2
    exit 1
  fi
}

# Sectors (512 B) written so far to the disk holding $data.
disk_device=$(basename "$(df --output=source "$data" | tail -1)")
disk_sectors_written() { awk -v d="$disk_device" '$3 == d {print $10}' /proc/diskstats; }

cpu_ticks() {
  local total=0 pid
  for pid in "${measured_pids[@]}"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}

# Waits (bounded) until every partition of topic $1 has a leader and it is
# the preferred one (first replica): otherwise the hand-back to preferred
# leaders (after 5 s) would move leaders in the middle of a measurement.
wait_for_preferred_leaders() {
  local tries=0
  until "$bin" cluster status --broker "$(addr 1)" --json 2>/dev/null |
    jq -e --arg t "$1" '[.partitions[] | select(.topic == $t)] as $p |
      ($p | length > 0) and ([$p[] | select(.leader == 0 or .leader != .replicas[0])] | length == 0)' >/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 300 ]; then echo "  (topic $1: leaders not all preferred after 30 s; measuring anyway)"; return; fi
    sleep 0.1
  done
}

# measure SETUP MODE ROUND BROKER ACKS PARTITIONS: one `bench produce` run on
# a fresh topic; prints a row and appends the rate to $results.
measure() {
  local setup=$1 mode=$2 round=$3 broker=$4 acks=$5 partitions=$6
  local topic="$setup-$mode-$round" flag=--idempotent
  [ "$mode" = idempotent ] || flag=--no-idempotent
  local leaders=""
  if [ "$setup" = cluster ]; then
    create_topic "$topic" "$partitions"
    wait_for_preferred_leaders "$topic"
    leaders=" leaders/node $("$bin" cluster status --broker "$(addr 1)" --json |
      jq -r --arg t "$topic" '[.partitions[] | select(.topic == $t) | .leader] as $l | [1, 2, 3] | map(. as $n | $l | map(select(. == $n)) | length) | join("/")')"
  fi
  local load ticks_before ticks_after sectors_before sectors_after
  load=$(cut -d' ' -f1 /proc/loadavg)
  ticks_before=$(cpu_ticks)
  sectors_before=$(disk_sectors_written)
  /usr/bin/time -f "%U %S" -o "$data/time" \
    "$bin" bench produce --broker "$broker" --topic "$topic" --partitions "$partitions" \
    --producers 4 --size 100 --count "$count" --acks "$acks" "$flag" --json >"$data/run.json"
  ticks_after=$(cpu_ticks)
  sectors_after=$(disk_sectors_written)
  local rate
  rate=$(jq -r '.records_per_s | floor' "$data/run.json")
  [ "$round" = warm-up ] || echo "$setup $mode $round $rate" >>"$results"
  jq -r --arg s "$setup" --arg m "$mode" --arg r "$round" --arg load "$load" \
    --arg client "$(awk '{printf "%.1f", $1 + $2}' "$data/time")" \
    --arg broker "$(awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}')" \
    --arg disk "$(( (sectors_after - sectors_before) / 2048 ))" --arg leaders "$leaders" \
    '"round \($r | . + "       " | .[0:7])  \($s | .[0:7])  \($m | . + "              " | .[0:14])  \(.records_per_s | floor) rec/s  \(.mb_per_s * 10 | floor / 10) MB/s  p50 \(.latency_ms.p50 | floor) ms  p99 \(.latency_ms.p99 | floor) ms  CPU-s client \($client) brokers \($broker)  device writes \($disk) MB (\(($disk | tonumber) / .elapsed_s | floor) MB/s)  load \($load)\($leaders)"' \
    "$data/run.json"
  "$bin" topic delete "$topic" --broker "$broker" >/dev/null 2>&1 || echo "  (could not delete $topic)"
}

# run_rounds SETUP BROKER ACKS PARTITIONS: a warm-up, then both modes per
# round, the first mode alternating.
run_rounds() {
  local round
  measure "$1" idempotent warm-up "$2" "$3" "$4"
  for round in $(seq 1 "$rounds"); do
    if [ $((round % 2)) -eq 1 ]; then
      measure "$1" idempotent "$round" "$2" "$3" "$4"
      measure "$1" non-idempotent "$round" "$2" "$3" "$4"
    else
      measure "$1" non-idempotent "$round" "$2" "$3" "$4"
      measure "$1" idempotent "$round" "$2" "$3" "$4"
    fi
  done
}

median() { # of the numbers on stdin
  sort -g | awk '{v[NR] = $1} END {if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

mode_median() { awk -v s="$1" -v m="$2" '$1 == s && $2 == m {print $4}' "$results" | median; }

# Idempotent / non-idempotent records/s of each round of setup $1.
round_ratios() {
  awk -v s="$1" '$1 == s {rate[$3 " " $2] = $4; rounds[$3] = 1}
    END {for (r in rounds) print rate[r " idempotent"] / rate[r " non-idempotent"]}' "$results"
}

table() {
  echo "## median records/s over $rounds rounds ($count records of 100 B each, 4 producers); ratio = idempotent / non-idempotent"
  printf "%-40s %11s %15s %15s %24s\n" setup idempotent non-idempotent "ratio medians" "per-round ratio: median (min-max)"
  local setup label idem plain ratios
  for setup in single cluster; do
    grep -q "^$setup " "$results" 2>/dev/null || continue
    label="1 broker, acks=leader, 4 partitions"
    [ "$setup" = single ] || label="3 nodes, acks=quorum, 6 partitions RF3"
    idem=$(mode_median "$setup" idempotent)
    plain=$(mode_median "$setup" non-idempotent)
    ratios=$(round_ratios "$setup" | sort -g)
    printf "%-40s %11.0f %15.0f %15.3f %14.3f (%.3f-%.3f)\n" "$label" "$idem" "$plain" \
      "$(awk -v a="$idem" -v b="$plain" 'BEGIN {print a / b}')" \
      "$(echo "$ratios" | median)" "$(echo "$ratios" | head -1)" "$(echo "$ratios" | tail -1)"
  done
}

run_single() {
  require_free "$single_address"
  mkdir -p "$data/single"
  "$bin" broker --data-dir "$data/single" --listen "$single_address" --fsync interval >"$data/single.log" 2>&1 &
  single_pid=$!
  local tries=0
  until "$bin" topic list --broker "$single_address" >/dev/null 2>&1; do
    tries=$((tries + 1)); [ "$tries" -lt 600 ] || { echo "the broker did not answer within 30 s" >&2; exit 1; }
    sleep 0.05
  done
  measured_pids=("$single_pid")
  echo "## (a) one broker, acks=leader, 4 partitions"
  run_rounds single "$single_address" leader 4
  kill "$single_pid"; wait "$single_pid" 2>/dev/null || true
  single_pid=
}

run_cluster() {
  require_free "$(addr 1)"
  start_cluster
  measured_pids=("${broker_pids[@]}")
  echo "## (b) 3 nodes, acks=quorum, 6 partitions RF3 (producers connect to node 1)"
  run_rounds cluster "$(addr 1)" quorum 6
  stop_cluster
}

# run_failover BACKOFF_MAX_MS
run_failover() {
  echo "## failover: bench failover --trials $trials --retry-backoff-max-ms $1 (idempotent probe, acks=quorum, 500 records/s); $(uptime)"
  local status=0
  "$bin" bench failover --trials "$trials" --retry-backoff-max-ms "$1" --json \
    >"$data/failover.json" 2>"$data/failover.err" || status=$?
  [ "$status" -eq 0 ] || failover_failed=1
  if ! jq -e . "$data/failover.json" >/dev/null 2>&1; then
    echo "bench failover failed (exit $status):"; cat "$data/failover.err"; return
  fi
  jq -r '.trials | to_entries[] | "trial \(.key + 1): killed \(.value.killed_leader), node \(.value.new_leader) acked after \(.value.failover_ms | floor) ms, caught up in \(.value.catch_up_ms | floor) ms"' "$data/failover.json"
  jq -r '"failover ms: median \(.failover_ms.median | floor), min \(.failover_ms.min | floor), p90 \(.failover_ms.p90 | floor), max \(.failover_ms.max | floor)",
    "acknowledged \(.loss.acknowledged), records in the log \(.loss.log_records), lost \(.loss.lost), order violations \(.order_violations), duplicates \(.duplicates), failed sends \(.failed_sends)"' "$data/failover.json"
  echo "bench failover exit status: $status"
  [ "$status" -eq 0 ] || cat "$data/failover.err"
}

echo "# machine: $(nproc) cores, $(uname -r); commit ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}; $(uptime)"
for setup in $setups; do
  case $setup in
    single) run_single ;;
    cluster) run_cluster ;;
    failover) ;;
    *) echo "unknown setup $setup" >&2; exit 1 ;;
  esac
done
[ -s "$results" ] && table
case " $setups " in
  *" failover "*) for backoff in $failover_backoffs; do run_failover "$backoff"; done ;;
esac
echo "# at the end: $(uptime)"
exit "$failover_failed"
