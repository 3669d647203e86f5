#!/usr/bin/env bash
# Started by the shared dhcp6/peers.sh inside namespace d6s with $W exported: writes the host file
# for the DHCPv6 benchmark link (fd00:20::/64 on d6-s, a pool as large as Kea's fd00:20::1:0/96
# less the first 65,536 addresses, which hold the server's own) and runs the release dhcpd, every
# lease of a REQUEST committed durably (redb, fsynced) before its REPLY.
# The small IPv4 subnet on the same link holds the server host: every [host] needs an IPv4 address.
# LINK: the server's interface (default d6-s; solo6.sh uses its own); METRICS=ADDR:PORT: the
# Prometheus endpoint too (solo6.sh reads the v6 counters after a run).
set -eu
H=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$W/etc"
ip addr add 10.26.0.1/24 dev "${LINK:-d6-s}" 2>/dev/null || true
cat > "$W/etc/hosts.toml" <<C
domain = "bench.test"
server = "srv"
[[subnet]]
network = "10.26.0.0/24"
[[subnet.pool]]
range = "10.26.0.100-10.26.0.200"
[[subnet]]
name = "bench6"
network = "fd00:20::/64"
dns = ["fd00:20::1"]
preferred-lifetime = "3000s"
valid-lifetime = "4000s"
ra = false
[[subnet.pool]]
range = "${RANGE6:-fd00:20::1:0-fd00:20::ffff:ffff}"
[host.srv]
ip = "10.26.0.1"
[dhcp]
ping-check = false
lease-db = "leases.redb"
C
if [ -n "${METRICS:-}" ]; then echo "metrics = \"$METRICS\"" >> "$W/etc/hosts.toml"; fi
exec "${DHCPD_BIN:-$H/../../target/release/dhcpd}" --user root --config "$W/etc/hosts.toml" --state-dir "$W" --log "${DHCPD_LOG:-warn}"
