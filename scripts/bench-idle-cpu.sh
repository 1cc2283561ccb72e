#!/usr/bin/env bash
# Idle CPU figures in BENCHMARKS.md: three release brokers on this machine
# holding 300 partitions (one topic, 300 partitions, replication 3), idle.
# For each Raft heartbeat period given (default: 100, the broker default, and
# 500 ms) it starts a fresh cluster, waits for every partition to have a
# leader and SETTLE_S more seconds, then reads utime+stime of each broker
# from /proc/PID/stat over WINDOW_S seconds.
# Usage: scripts/bench-idle-cpu.sh [HEARTBEAT_MS ...]
# Env: PARTITIONS (300), WINDOW_S (30), SETTLE_S (10), RUST_LOG (brokers' log filter).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin citystream >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/citystream
partitions=${PARTITIONS:-300}
window_s=${WINDOW_S:-30}
settle_s=${SETTLE_S:-10}
ticks_per_s=$(getconf CLK_TCK)
heartbeats=("$@")
[ ${#heartbeats[@]} -gt 0 ] || heartbeats=(100 500)
data=
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
trap 'stop_cluster; [ -z "$data" ] || rm -rf "$data"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "# machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); 3 brokers on it; $partitions partitions RF3; RUST_LOG=${RUST_LOG:-<unset>}"
for heartbeat_ms in "${heartbeats[@]}"; do
  data=$(mktemp -d /tmp/citystream-idle-bench.XXXXXX)
  broker_flags="--heartbeat-ms $heartbeat_ms --election-timeout-ms $((heartbeat_ms * 3))"
  start_cluster
  create_topic idle "$partitions"
  wait_for_leaders
  sleep "$settle_s"
  echo "## --heartbeat-ms $heartbeat_ms --election-timeout-ms $((heartbeat_ms * 3)): leaders per node $("$bin" cluster status --broker "$(addr 1)" --json |
    jq -c '[.partitions[] | .leader] | group_by(.) | map({(.[0] | tostring): length}) | add')"
  before=()
  for pid in "${broker_pids[@]}"; do before+=("$(cpu_ticks "$pid")"); done
  sleep "$window_s"
  for index in 0 1 2; do
    ticks=$(( $(cpu_ticks "${broker_pids[$index]}") - before[index] ))
    rss=$(awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/${broker_pids[$index]}/status")
    awk -v n=$((index + 1)) -v t="$ticks" -v w="$window_s" -v hz="$ticks_per_s" -v rss="$rss" \
      'BEGIN {printf "node %d: %.1f%% of one core (%d ticks in %d s), RSS %s\n", n, 100 * t / hz / w, t, w, rss}'
  done
  stop_cluster
  rm -rf "$data"
  data=
done
