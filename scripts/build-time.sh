#!/usr/bin/env bash
# How long a release build of the binary takes from an empty target
# directory, and where the compile time goes: our crates against the
# dependencies, and the slowest units (cargo's --timings report).
# Extra arguments go to cargo, e.g. environment overrides of the profile:
#   scripts/build-time.sh
#   CARGO_PROFILE_RELEASE_DEBUG=false scripts/build-time.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=$(mktemp -d /tmp/citystream-build-time.XXXXXX)
trap 'rm -rf "$TARGET"' EXIT
time cargo build --release --bin citystream --timings --target-dir "$TARGET" "$@"
python3 - "$(ls "$TARGET"/cargo-timings/cargo-timing-*.html | head -1)" <<'PY'
import json, re, sys
units = json.loads(re.search(r"const UNIT_DATA = (\[.*?\]);\n", open(sys.argv[1]).read(), re.S).group(1))
ours = sum(u["duration"] for u in units if u["name"].startswith("citystream"))
deps = sum(u["duration"] for u in units if not u["name"].startswith("citystream"))
print(f"{len(units)} units: ours {ours:.0f} s, dependencies {deps:.0f} s of compile time")
for u in sorted(units, key=lambda u: -u["duration"])[:8]:
    print(f"  {u['duration']:6.1f} s  {u['name']} {u.get('target', '').strip()}")
PY
