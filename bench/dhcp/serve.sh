#!/usr/bin/env bash
# Started by the shared peers.sh inside namespace dhs with $W exported: writes the host file for the
# benchmark subnet and runs the release dhcpd (every lease committed durably before its ACK).
# NETWORK and POOL (one or more space-separated ranges, one [[subnet.pool]] each) override the subnet.
set -eu
H=$(cd "$(dirname "$0")" && pwd)
# The host file sits apart from the lease database: the reloader watches the host file's folder.
mkdir -p "$W/etc"
cat > "$W/etc/hosts.toml" <<C
domain = "bench.test"
server = "srv"
[[subnet]]
network = "${NETWORK:-10.20.0.0/16}"
routers = ["10.20.0.1"]
lease = "1h"
authoritative = true
$(for r in ${POOL:-10.20.1.0-10.20.250.255}; do printf '[[subnet.pool]]\nrange = "%s"\n' "$r"; done)
[host.srv]
ip = "10.20.0.1"
[dhcp]
ping-check = false
lease-db = "leases.redb"
C
# METRICS=ADDR:PORT: the Prometheus endpoint too (solo.sh reads the counters after a run)
if [ -n "${METRICS:-}" ]; then echo "metrics = \"$METRICS\"" >> "$W/etc/hosts.toml"; fi
exec "${DHCPD_BIN:-$H/../../target/release/dhcpd}" --user root --config "$W/etc/hosts.toml" --state-dir "$W" --log "${DHCPD_LOG:-warn}"
