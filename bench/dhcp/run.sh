#!/usr/bin/env bash
# dhcpd beside Kea and ISC dhcpd on the shared workload (perfdhcp as a relay, 10.20.0.0/16, 1M
# simulated clients). usage: run.sh [rate] [seconds]   (root; peers from Debian, see
# ../../../shared/bench/README.md). Builds the release binary first.
set -eu
H=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$H/../.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/bench/dhcp/peers.sh}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p dhcpd --manifest-path "$ROOT/Cargo.toml"
export DHCPD_BIN="$CARGO_TARGET_DIR/release/dhcpd"
DHCPD_CMD="$H/serve.sh" exec "$PEERS" "${1:-5000}" "${2:-10}"
