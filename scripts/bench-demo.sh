#!/usr/bin/env bash
# CPU and RSS of `citystream demo` (the demo process and its three broker
# children): starts the demo on a fresh data directory, waits WARM seconds,
# samples user+system ticks over SECONDS (/proc/PID/stat) and the RSS of
# every process, then stops it with Ctrl-C. Extra arguments go to the demo.
#
#   scripts/bench-demo.sh                  # default speed (10)
#   scripts/bench-demo.sh --speed 1        # the simulator's default rate
#   scripts/bench-demo.sh --no-sim         # the idle cluster
#   WARM=40 SECONDS_=60 scripts/bench-demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/citystream}
WARM=${WARM:-40}
SECS=${SECONDS_:-30}
[ -x "$BIN" ] || cargo build --release --bin citystream
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
"$BIN" demo --data-dir "$DATA/demo" "$@" >"$DATA/demo.out" 2>&1 &
DEMO=$!
sleep "$WARM"
pids() { echo "$DEMO"; pgrep -P "$DEMO"; }
ticks() { # pid -> utime+stime
    local fields
    read -ra fields < <(sed 's/.*) //' "/proc/$1/stat")
    echo $((fields[11] + fields[12]))
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
declare -A before
for p in $(pids); do before[$p]=$(ticks "$p"); done
sleep "$SECS"
hz=$(getconf CLK_TCK)
total_ticks=0 total_rss=0
for p in $(pids); do
    t=$(( $(ticks "$p") - ${before[$p]:-0} ))
    r=$(rss_kb "$p")
    total_ticks=$((total_ticks + t)) total_rss=$((total_rss + r))
    printf '%-8s %-7s cpu %5.1f%%  rss %4d MB\n' "$p" "$([ "$p" = "$DEMO" ] && echo demo || echo broker)" \
        "$(echo "$t * 100 / ($hz * $SECS)" | bc -l)" $((r / 1024))
done
printf 'total: cpu %.1f%% of one core over %s s, rss %d MB\n' \
    "$(echo "$total_ticks * 100 / ($hz * $SECS)" | bc -l)" "$SECS" $((total_rss / 1024))
kill -INT "$DEMO"
wait "$DEMO" || true
grep '^demo: 3/3' "$DATA/demo.out" | tail -1 || true
