#!/usr/bin/env bash
# Reproduces the single-broker figures in BENCHMARKS.md: one release broker
# (fsync interval, 5 ms) and the load generator on this machine, loopback.
# Usage: scripts/bench-single-broker.sh [DATA_DIR]   (default: a temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin citystream >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/citystream
data=${1:-$(mktemp -d /tmp/citystream-bench.XXXXXX)}
broker_pid=
start_broker() {
  "$bin" broker --data-dir "$data" --listen 127.0.0.1:9400 --fsync interval >"$data.broker.log" 2>&1 &
  broker_pid=$!
  until "$bin" topic list >/dev/null 2>&1; do sleep 0.005; done
}
stop_broker() { kill "-$1" "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
trap 'stop_broker KILL; rm -rf "$data" "$data.broker.log"' EXIT

echo "# machine: $(nproc) cores, $(uname -r); data dir $data"
start_broker
echo "## produce 100 B, 4 producers, 4 partitions, acks=leader"
"$bin" bench produce --topic p100 --partitions 4 --producers 4 --size 100 --count 4000000 --acks leader
echo "## produce 100 B, 4 producers, 1 partition, acks=leader"
"$bin" bench produce --topic p100one --partitions 1 --producers 4 --size 100 --count 4000000 --acks leader
echo "## produce 1 KiB, 4 producers, 4 partitions, acks=leader"
"$bin" bench produce --topic p1k --partitions 4 --producers 4 --size 1024 --count 1000000 --acks leader
echo "## buffered sequential write bandwidth of the same disk (dd, 1 GiB)"
dd if=/dev/zero of="$data/dd.test" bs=1M count=1024 2>&1 | tail -1
rm -f "$data/dd.test"
echo "## consume from disk, 1 consumer (topic p100, 4 partitions)"
"$bin" bench consume --topic p100 --partitions 4 --consumers 1 --count 4000000
echo "## consume from disk, 4 consumers"
"$bin" bench consume --topic p100 --partitions 4 --consumers 4 --count 4000000
echo "## end to end, 1 KiB at 10,000 records/s, acks=leader, linger 0"
"$bin" bench e2e --topic e2e --partitions 1 --producers 1 --size 1024 --rate 10000 --count 100000 --linger-ms 0
echo "## produce latency, 1 KiB at 10,000 records/s"
"$bin" bench produce --topic lat --partitions 1 --producers 1 --size 1024 --rate 10000 --count 50000 --linger-ms 0
echo "## restart with the log above: time until the broker answers, and until the first record is read"
echo "log size: $(du -sh "$data" | cut -f1)"
for signal in TERM KILL; do
  stop_broker "$signal"
  t0=$(date +%s%N); start_broker; t1=$(date +%s%N)
  "$bin" consume p100 --from-beginning --max 1 >/dev/null; t2=$(date +%s%N)
  echo "after SIG$signal: answering after $(( (t1 - t0) / 1000000 )) ms, first record after $(( (t2 - t0) / 1000000 )) ms"
done
sleep 2
echo "## idle broker: RSS and CPU over 20 s"
grep VmRSS "/proc/$broker_pid/status"
cpu0=$(awk '{print $14+$15}' "/proc/$broker_pid/stat"); sleep 20; cpu1=$(awk '{print $14+$15}' "/proc/$broker_pid/stat")
echo "idle CPU: $(( cpu1 - cpu0 )) clock ticks in 20 s ($(getconf CLK_TCK) ticks = 1 s of one core)"
