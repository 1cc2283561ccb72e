#!/usr/bin/env bash
# MQTT figures side by side, same load generator (`citystream bench mqtt`),
# same run, this machine, loopback: Mosquitto 2.0 (Debian) with its default
# queue limits and again with `max_queued_messages 0` (no queue limit), a
# citystream single broker (--in-memory --mqtt) and a 3-node citystream
# cluster (clients spread over the nodes); the single broker also with one
# worker thread, as Mosquitto has (target single-1-thread: the per-core
# figure; the load generator needs the machine's other core). Workloads,
# 100-byte messages:
#   10,000 idle (first, on the fresh process), QoS 0 4 -> 1, QoS 1 4 -> 1,
#   QoS 0 1 -> 50, QoS 1 1 -> 50.
# QoS 1 subscribers keep persistent sessions; publishers stay at most
# WINDOW messages ahead of the slowest subscriber (lossless rates).
# Prints one table at the end; each run's JSON line is kept in the work dir.
# Usage: scripts/bench-mqtt.sh [MESSAGES] [FANOUT_MESSAGES] [IDLE]
#   MESSAGES per publisher in 4 -> 1 (default 100000), FANOUT_MESSAGES in
#   1 -> 50 (default 20000), IDLE connections (default 10000).
#   Env: WINDOW (default 1000), MOSQUITTO (default /usr/sbin/mosquitto),
#   BIN (a citystream binary to use instead of building the release one),
#   BASE_PORT (cluster native ports BASE_PORT+1..3, default 19700),
#   TARGETS (default "mosquitto mosquitto-unlimited single single-1-thread
#   cluster").
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-100000}
fanout_messages=${2:-20000}
idle=${3:-10000}
window=${WINDOW:-1000}
targets=${TARGETS:-mosquitto mosquitto-unlimited single single-1-thread cluster}
mosquitto=${MOSQUITTO:-/usr/sbin/mosquitto}
[ -x "$mosquitto" ] || { echo "$mosquitto is missing: apt-get install mosquitto" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is missing: apt-get install jq" >&2; exit 1; }
if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  cargo build --release --bin citystream -p citystream-cli >/dev/null
  bin=${CARGO_TARGET_DIR:-target}/release/citystream
fi
work=$(mktemp -d /tmp/citystream-bench-mqtt.XXXXXX)
data=$work/cluster
results=$work/results.jsonl
BASE_PORT=${BASE_PORT:-19700}
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap 'stop_server; stop_cluster; rm -rf "$data"; echo "# results and logs: $work"' EXIT

# Every idle client is a socket in the load generator and in the broker.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((idle + 1024)) ]; then
  echo "# ulimit -n is $(ulimit -n), too low for $idle idle clients: raise the hard limit" >&2
  exit 1
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for_port() {
  local tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    tries=$((tries + 1)); [ "$tries" -lt 600 ] || { echo "nothing listens on $1" >&2; exit 1; }
    sleep 0.05
  done
}

start_mosquitto() { # $1: extra config lines
  local port config=$work/mosquitto-$2.conf
  port=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n%s\n' "$port" "$1" >"$config"
  "$mosquitto" -c "$config" >"$work/mosquitto-$2.log" 2>&1 &
  server_pid=$!
  wait_for_port "$port"
  addresses=127.0.0.1:$port idle_address=127.0.0.1:$port idle_pid=$server_pid
}

# $@: extra broker flags (e.g. --worker-threads 1).
start_single() {
  local native mqtt
  native=$(free_port); mqtt=$(free_port)
  "$bin" broker --in-memory --listen "127.0.0.1:$native" --mqtt "127.0.0.1:$mqtt" "$@" \
    >>"$work/single.log" 2>&1 &
  server_pid=$!
  wait_for_port "$mqtt"
  "$bin" topic create mqtt.bench --partitions 3 --broker "127.0.0.1:$native" >/dev/null
  addresses=127.0.0.1:$mqtt idle_address=127.0.0.1:$mqtt idle_pid=$server_pid
}

# cluster-lib's start_cluster gives every node the same flags; each node
# needs its own --mqtt port here.
start_mqtt_cluster() {
  local node
  mkdir -p "$data"
  addresses=
  for node in 1 2 3; do
    mkdir -p "$data/node$node"
    "$bin" broker --data-dir "$data/node$node" --node-id "$node" --cluster-id bench \
      --listen "$(addr "$node")" --peers "$(peers)" --mqtt "127.0.0.1:$((base_port + 10 + node))" \
      >"$work/cluster-node$node.log" 2>&1 &
    broker_pids+=($!)
    addresses+=${addresses:+,}127.0.0.1:$((base_port + 10 + node))
  done
  for node in 1 2 3; do wait_for_port "$((base_port + 10 + node))"; done
  create_topic mqtt.bench 3
  wait_for_leaders
  idle_address=127.0.0.1:$((base_port + 11)) idle_pid=${broker_pids[0]}
}

# One workload: $1 target, $2 workload name, the rest bench flags.
run() {
  local target=$1 workload=$2 output status=0
  shift 2
  echo "## $target: $workload" >&2
  output=$("$bin" bench mqtt --window "$window" --json "$@") || status=$?
  [ -n "$output" ] || output='{}'
  jq -c --arg target "$target" --arg workload "$workload" --argjson status "$status" \
    '. + {target: $target, workload: $workload, exit_status: $status}' <<<"$output" >>"$results"
}

workloads() { # $1: target
  # Idle first, on the fresh process: memory freed by a load run would be
  # reused by the idle connections and hide their cost.
  run "$1" "idle $idle" --address "$idle_address" --idle "$idle" --broker-pid "$idle_pid"
  run "$1" "QoS 0 4->1" --address "$addresses" --publishers 4 --subscribers 1 --qos 0 --messages "$messages"
  run "$1" "QoS 1 4->1" --address "$addresses" --publishers 4 --subscribers 1 --qos 1 --persistent --messages "$messages"
  run "$1" "QoS 0 1->50" --address "$addresses" --publishers 1 --subscribers 50 --qos 0 --messages "$fanout_messages"
  run "$1" "QoS 1 1->50" --address "$addresses" --publishers 1 --subscribers 50 --qos 1 --persistent --messages "$fanout_messages"
}

echo "# machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg); brokers and load generator on it, loopback"
echo "# $("$mosquitto" -h 2>/dev/null | head -1); citystream $("$bin" --version | cut -d' ' -f2); ulimit -n $(ulimit -n); window $window; work dir $work"
for target in $targets; do
  case $target in
    mosquitto) start_mosquitto "" default ;;
    mosquitto-unlimited) start_mosquitto "max_queued_messages 0" unlimited ;;
    single) start_single ;;
    single-1-thread) start_single --worker-threads 1 ;;
    cluster) start_mqtt_cluster ;;
    *) echo "unknown target $target" >&2; exit 1 ;;
  esac
  workloads "$target"
  stop_server
  stop_cluster
done

echo
echo "# 100-byte messages; msgs/s = messages delivered per second (each once), deliveries/s = copies; latency publish -> delivered (ms)"
jq -r -s '
  ["target", "workload", "published", "delivered", "lost", "dup", "disorder", "msgs/s", "deliveries/s", "p50", "p99", "max", "exit"],
  (.[] | if .mode == "mqtt" then
      [.target, .workload, .published, .delivered, .lost, .duplicates, .out_of_order,
       (.messages_per_s | floor), (.deliveries_per_s | floor),
       (.latency_ms.p50 // "-"), (.latency_ms.p99 // "-"), (.latency_ms.max // "-"), .exit_status]
    elif .mode == "mqtt-idle" then
      [.target, .workload, "connected \(.connected)", "failed \(.failed)",
       "RSS/connection \(if .rss_per_connection_bytes then (.rss_per_connection_bytes | floor | tostring) + " B" else "-" end)",
       "-", "-", "-", "-", "-", "-", "-", .exit_status]
    else
      [.target, .workload, "no result (see the messages above)", "-", "-", "-", "-", "-", "-", "-", "-", "-", .exit_status]
    end)
  | @tsv' "$results" | column -t -s $'\t'
echo "# load: $(uptime)"
