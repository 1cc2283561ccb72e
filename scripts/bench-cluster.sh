#!/usr/bin/env bash
# RF3 throughput figures in BENCHMARKS.md: three release brokers (fsync
# interval, 5 ms) and the load generator on this machine, loopback.
# Usage: scripts/bench-cluster.sh [PARTITIONS] [COUNT]   (default 6, 4000000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin citystream >/dev/null
bin=${CARGO_TARGET_DIR:-target}/release/citystream
partitions=${1:-6}
count=${2:-4000000}
data=$(mktemp -d /tmp/citystream-cluster-bench.XXXXXX)
broker_flags="--fsync interval"
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
trap 'stop_cluster; rm -rf "$data"' EXIT

echo "# machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); 3 brokers + load generator on it; data dir $data"
start_cluster
create_topic rf3 "$partitions"
wait_for_leaders
echo "## partitions led per node: $("$bin" cluster status --broker "$(addr 1)" --json |
  jq -c '[.partitions[] | .leader] | group_by(.) | map({(.[0] | tostring): length}) | add')"
cpu_before=$(for pid in "${broker_pids[@]}"; do awk '{print $14+$15}' "/proc/$pid/stat"; done)
echo "## produce 100 B, 4 producers, $partitions partitions RF3, acks=quorum"
/usr/bin/time -f "load generator CPU: %U s user + %S s system in %e s" \
  "$bin" bench produce --broker "$(addr 1)" --topic rf3 --producers 4 --size 100 \
  --count "$count" --acks quorum
echo "## broker CPU during the run (clock ticks, $(getconf CLK_TCK)/s = one core)"
paste <(echo "$cpu_before") <(for pid in "${broker_pids[@]}"; do awk '{print $14+$15}' "/proc/$pid/stat"; done) |
  awk '{printf "node %d: %d ticks\n", NR, $2 - $1}'
echo "## produce latency at 20,000 records/s, 1 producer, acks=quorum, linger 0"
"$bin" bench produce --broker "$(addr 1)" --topic rf3 --producers 1 --size 100 \
  --count 200000 --rate 20000 --linger-ms 0 --acks quorum
echo "## committed offsets per partition (node 1's view)"
"$bin" cluster status --broker "$(addr 1)" --json | jq -c '[.partitions[] | {p: .partition, leader, commit_index}]'
