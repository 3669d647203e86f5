#!/usr/bin/env bash
# dnsd beside BIND, NSD, Knot (and hickory-dns when installed) on the shared workload
# (../../../shared/bench/dns/peers.sh: dnsperf, 1,000-host zone). dnsd serves the same 1,000 hosts
# from a host file written by mkhosts.py. Needs root, the peers and dnsperf, and a release build:
#   cargo build --release -p dnsd && bench/dns/run.sh [seconds]
# HICKORY=/path/to/hickory-dns adds its row when it is not in PATH.
set -eu
H=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$H/../.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/dns/peers.sh}
BIN=${DNSD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dnsd}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p dnsd ($BIN missing)" >&2; exit 1; }
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
python3 "$H/mkhosts.py" 1000 "$D/hosts.toml" 5304
"$BIN" --check --config "$D/hosts.toml" >/dev/null
export DNSD_CMD="$BIN --user root --config $D/hosts.toml --state-dir $D --runtime-dir $D --log warn"
export DNSD_PORT=5304
bash "$PEERS" "${1:-10}"
