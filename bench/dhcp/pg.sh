#!/usr/bin/env bash
# Two dhcpd servers on one PostgreSQL lease database against Kea 2.2 with its PostgreSQL backend,
# in one run. PostgreSQL (Debian's, started here: initdb in a temporary folder, fsync on) runs in
# namespace pgb-db (10.20.0.9); the servers in pgb-s1 (10.20.0.1) and pgb-s2 (10.20.0.3); perfdhcp
# as relays in pgb-c (10.20.0.2 and .4); all on one bridge. 4-way exchanges, 1,000,000 simulated
# clients per perfdhcp, fixed offered rate.
#   Kea: one server (multi-threaded, 2 threads), perfdhcp at RATE.
#   dhcpd pair: each server gets its own relay and client range at RATE/2 ... and at RATE each.
# usage: pg.sh [rate] [seconds]   (root; kea-dhcp4-server kea-admin postgresql perfdhcp)
set -u
R=${1:-4000}; P=${2:-10}
H=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$H/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -p dhcpd --manifest-path "$ROOT/Cargo.toml" || exit 1
BIN=${DHCPD_BIN:-$CARGO_TARGET_DIR/release/dhcpd}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
W=$(mktemp -d); chmod 755 "$W"
NS="pgb-sw pgb-db pgb-s1 pgb-s2 pgb-c"
PIDS=""
down() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for p in $PIDS; do wait "$p" 2>/dev/null; done
  for n in $NS; do ip netns del "$n" 2>/dev/null; done
  if [ -n "${KEEP:-}" ]; then echo "kept $W"; else rm -rf "$W"; fi
}
trap down EXIT
for n in $NS; do ip netns del "$n" 2>/dev/null; ip netns add "$n"; ip -n "$n" link set lo up; done
ip -n pgb-sw link add br0 type bridge; ip -n pgb-sw link set br0 up
i=0
for h in db:10.20.0.9 s1:10.20.0.1 s2:10.20.0.3 c:10.20.0.2; do
  n=${h%%:*}; a=${h#*:}; i=$((i+1))
  ip link add "pgb$i" type veth peer name e0 netns "pgb-$n"
  ip link set "pgb$i" netns pgb-sw; ip -n pgb-sw link set "pgb$i" master br0 up
  ip -n "pgb-$n" addr add "$a/16" dev e0; ip -n "pgb-$n" link set e0 up
done
ip -n pgb-c addr add 10.20.0.4/16 dev e0

# PostgreSQL
mkdir "$W/pg"; chown postgres:postgres "$W/pg"
AS_PG="setpriv --reuid=postgres --regid=postgres --init-groups --"
$AS_PG "$PGBIN/initdb" -D "$W/pg" -U postgres --auth=trust -E UTF8 >"$W/initdb.log" 2>&1 || { cat "$W/initdb.log"; exit 1; }
echo "host all all 10.20.0.0/16 trust" >> "$W/pg/pg_hba.conf"
ip netns exec pgb-db $AS_PG "$PGBIN/postgres" -D "$W/pg" -k "$W/pg" -p 5432 -c listen_addresses=10.20.0.9 \
  -c max_connections=50 >"$W/pg.log" 2>&1 & PIDS="$PIDS $!"
for _ in $(seq 100); do ip netns exec pgb-db "$PGBIN/pg_isready" -q -h 10.20.0.9 -p 5432 && break; sleep 0.2; done
PSQL="ip netns exec pgb-db psql -q -h 10.20.0.9 -U postgres -v ON_ERROR_STOP=1"
$PSQL -c "CREATE ROLE kea LOGIN PASSWORD 'kea'" -c "CREATE DATABASE kea OWNER kea" -c "CREATE DATABASE dhcpd"
ip netns exec pgb-db kea-admin db-init pgsql -u kea -p kea -n kea -h 10.20.0.9 >"$W/kea-admin.log" 2>&1 || { cat "$W/kea-admin.log"; exit 1; }

cat > "$W/kea.json" <<C
{ "Dhcp4": { "interfaces-config": { "interfaces": ["e0"], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "postgresql", "name": "kea", "host": "10.20.0.9", "user": "kea", "password": "kea" },
  "multi-threading": { "enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 256 },
  "valid-lifetime": 3600, "authoritative": true,
  "subnet4": [ { "id": 1, "subnet": "10.20.0.0/16", "pools": [ { "pool": "10.20.1.0 - 10.20.250.255" } ],
    "option-data": [ { "name": "routers", "data": "10.20.0.1" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "stdout" } ] } ] } }
C
mkdir -p "$W/etc" "$W/s1" "$W/s2" /run/kea
cat > "$W/etc/hosts.toml" <<C
domain = "bench.test"
server = "srv"
[[subnet]]
network = "10.20.0.0/16"
routers = ["10.20.0.1"]
lease = "1h"
authoritative = true
[[subnet.pool]]
range = "10.20.1.0-10.20.250.255"
[host.srv]
ip = "10.20.0.1"
[dhcp]
ping-check = false
lease-db = "postgresql://postgres@10.20.0.9:5432/dhcpd"
C

acks() { awk '/REQUEST-ACK/{f=1} f&&/received packets/{print $3; exit}' "$1"; }
perf() { # relay server rate macbase out
  ip netns exec pgb-c timeout $((P+15)) perfdhcp -4 -l "$1" -r "$3" -p "$P" -R 1000000 -b "mac=$4" "$2" >"$5" 2>&1
}

# Kea on PostgreSQL
ip netns exec pgb-s1 kea-dhcp4 -c "$W/kea.json" >"$W/kea.log" 2>&1 & KEA=$!; PIDS="$PIDS $KEA"; sleep 2
perf 10.20.0.2 10.20.0.1 "$R" 00:0c:01:00:00:00 "$W/kea.perf"
k=$(acks "$W/kea.perf"); kill "$KEA"; wait "$KEA" 2>/dev/null
printf '%-22s offered=%-6s acks_per_s=%s\n' kea-postgresql "$R" "$(( ${k:-0} / P ))"

# dhcpd pair on PostgreSQL
for s in 1 2; do
  ip netns exec "pgb-s$s" "$BIN" --user root --config "$W/etc/hosts.toml" --state-dir "$W/s$s" --runtime-dir "$W/s$s" \
    --log "${DHCPD_LOG:-warn}" >"$W/dhcpd$s.log" 2>&1 & PIDS="$PIDS $!"
done
sleep 2
for rate in $((R / 2)) "$R"; do
  perf 10.20.0.2 10.20.0.1 "$rate" 00:0d:01:00:00:00 "$W/p1.perf" &
  a=$!
  perf 10.20.0.4 10.20.0.3 "$rate" 00:0e:01:00:00:00 "$W/p2.perf"
  wait "$a"
  a1=$(acks "$W/p1.perf"); a2=$(acks "$W/p2.perf")
  printf '%-22s offered=%-6s acks_per_s=%s (%s + %s)\n' dhcpd-pair-postgresql "$((rate * 2))" \
    "$(( (${a1:-0} + ${a2:-0}) / P ))" "$(( ${a1:-0} / P ))" "$(( ${a2:-0} / P ))"
done
n=$($PSQL -At -d dhcpd -c "SELECT count(*), count(DISTINCT address) FROM dhcpd_lease WHERE state = 'bound'")
echo "dhcpd rows bound (count|distinct): $n"
grep -h -E "ERROR|refused" "$W/dhcpd1.log" "$W/dhcpd2.log" | head -5
