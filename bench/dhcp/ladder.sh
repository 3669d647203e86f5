#!/usr/bin/env bash
# Kea and dhcpd at rising offered rates with the light generator (GEN=loadgen) on the HUGE pool,
# alternating the order per rate (kea, dhcpd, dhcpd, kea), each run under the machine's benchmark
# lock. usage: ladder.sh "RATE..." [SECONDS] [ROUNDS]   (root; needs kea-dhcp4 and a release dhcpd,
# DHCPD_BIN or $CARGO_TARGET_DIR/release/dhcpd). Prints solo.sh's line per run; keeps every run's
# files under $OUT (default /tmp/dhcp-ladder.DATE) as RATE-SERVER-N/.
# SOLO=solo6.sh: the DHCPv6 runs instead (kea-dhcp6 and dhcpd, loadgen -6; HUGE does not apply).
set -u
H=$(cd "$(dirname "$0")" && pwd)
RATES=${1:?usage: ladder.sh \"RATE...\" [SECONDS] [ROUNDS]}; P=${2:-8}; ROUNDS=${3:-1}
OUT=${OUT:-/tmp/dhcp-ladder.$(date -u +%Y%m%dT%H%M%S)}; mkdir -p "$OUT"
export GEN=${GEN:-loadgen} HUGE=${HUGE-1}
for r in $RATES; do
  for round in $(seq "$ROUNDS"); do
    i=0
    for s in kea dhcpd dhcpd kea; do
      i=$((i+1))
      OUT="$OUT/$r-$s-$round$i" flock /tmp/bench.lock "$H/${SOLO:-solo.sh}" "$s" "$r" "$P" | tail -1
    done
  done
done
