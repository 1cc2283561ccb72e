# Sourced by scripts/bench-cluster.sh and scripts/bench-idle-cpu.sh: start and
# stop a 3-node release cluster on 127.0.0.1 (ports BASE_PORT+1..+3, default
# 9501..9503). Needs $bin and $data set by the caller, and jq.
# Extra broker flags go in $broker_flags (e.g. "--heartbeat-ms 500").
base_port=${BASE_PORT:-9500}
broker_pids=()
addr() { echo "127.0.0.1:$((base_port + $1))"; }
peers() { echo "1=$(addr 1),2=$(addr 2),3=$(addr 3)"; }

start_cluster() {
  for node in 1 2 3; do
    mkdir -p "$data/node$node"
    # shellcheck disable=SC2086 # broker_flags is a list of flags
    "$bin" broker --data-dir "$data/node$node" --node-id "$node" --cluster-id bench \
      --listen "$(addr "$node")" --peers "$(peers)" ${broker_flags:-} \
      >"$data/node$node.log" 2>&1 &
    broker_pids+=($!)
  done
  # Ready: every node answers and sees 3 alive nodes and a metadata leader.
  for node in 1 2 3; do
    local tries=0
    until "$bin" cluster status --broker "$(addr "$node")" --json 2>/dev/null |
      jq -e '(.metadata_leader != null) and ([.nodes[] | select(.state == "alive")] | length == 3)' >/dev/null; do
      tries=$((tries + 1)); [ "$tries" -lt 600 ] || { echo "node $node not ready" >&2; exit 1; }
      sleep 0.1
    done
  done
}

# Creates a topic replicated on all 3 nodes. Retried: just after start a
# node may not be registered in the cluster metadata yet ("replication factor
# 3 exceeds the N active brokers").
create_topic() {
  local tries=0
  until "$bin" topic create "$1" --partitions "$2" --replication 3 --broker "$(addr 1)" >/dev/null 2>&1; do
    tries=$((tries + 1)); [ "$tries" -lt 300 ] || { echo "topic $1 not created" >&2; exit 1; }
    sleep 0.1
  done
}

# Waits until every partition of the cluster has a leader (as node 1 sees it).
wait_for_leaders() {
  local tries=0
  until "$bin" cluster status --broker "$(addr 1)" --json |
    jq -e '[.partitions[] | select(.leader == 0)] | length == 0' >/dev/null; do
    tries=$((tries + 1)); [ "$tries" -lt 600 ] || { echo "partitions without a leader" >&2; exit 1; }
    sleep 0.1
  done
}

stop_cluster() {
  for pid in "${broker_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${broker_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  broker_pids=()
}
