#!/usr/bin/env bash
# One DHCPv6 server alone with the light generator (loadgen -6: SOLICIT/ADVERTISE/REQUEST/REPLY,
# IA_NA, one DUID-LL per simulated client, multicast to ff02::1:2 on the link, as perfdhcp -6),
# the v6 counterpart of solo.sh. Own namespaces (l6s/l6c, link l6-s <-> l6-c, fd00:20::/64) so it
# never clashes with ../shared/bench/dhcp6/peers.sh (d6s/d6c). Kea's set-up is peers.sh's.
# usage: solo6.sh dhcpd|kea RATE SECONDS [CLIENTS]      (root; run it under flock /tmp/bench.lock)
#   GEN=loadgen (default) or perfdhcp (perfdhcp -6 -l l6-c, the same command line as peers.sh)
#   OUT=dir     keep logs, the generator's output and counters there (default: a temporary folder)
#   LOADGEN_BIN a built generator (else cargo builds loadgen/ into LOADGEN_TARGET_DIR, default
#               loadgen/target); LOADGEN_ARGS its extra options (--tick, --drain ...)
#   DHCPD_BIN   the release dhcpd (default $CARGO_TARGET_DIR/release/dhcpd)
#   PERF=1      record a CPU profile of the server (perf, cpu-clock) into $OUT/perf.data
# Prints one line: REPLYs/s, SOLICIT and REQUEST drops, the server's CPU per completed exchange
# (exact scheduler runtime of all its threads), the generator's CPU, the UDP receive-buffer
# overflows in each namespace (Udp6RcvbufErrors, client c= / server s=), and for dhcpd its v6
# counters (overload = full core queue, silent = unanswered) and bound addresses.
set -u
S=${1:-dhcpd}; R=${2:-3000}; P=${3:-10}; N=${4:-1000000}
H=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$H/../.." && pwd)
export W=$(mktemp -d); OUT=${OUT:-$W}; mkdir -p "$OUT"
BIN=${DHCPD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dhcpd}
METRICS=127.0.0.1:9167
GEN=${GEN:-loadgen}
case "$GEN" in
perfdhcp) GENCMD=(perfdhcp -6 -l l6-c) ;;
loadgen)
  if [ -z "${LOADGEN_BIN:-}" ]; then
    LT=${LOADGEN_TARGET_DIR:-$H/loadgen/target}; LOADGEN_BIN=$LT/release/loadgen
    cargo build --release --locked --quiet --manifest-path "$H/loadgen/Cargo.toml" --target-dir "$LT" >&2 || exit 1
  fi
  GENCMD=("$LOADGEN_BIN" -6 -l l6-c ${LOADGEN_ARGS:-}) ;;
*) echo "GEN=$GEN: use loadgen or perfdhcp" >&2; exit 2 ;;
esac
case "$S" in dhcpd|kea) ;; *) echo "usage: solo6.sh dhcpd|kea RATE SECONDS [CLIENTS]" >&2; exit 2 ;; esac
down() { ip netns del l6s 2>/dev/null; ip netns del l6c 2>/dev/null; true; }
down
ip netns add l6s; ip netns add l6c
ip link add l6-s type veth peer name l6-c; ip link set l6-s netns l6s; ip link set l6-c netns l6c
for n in l6s l6c; do ip netns exec $n sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0; ip -n $n link set lo up; done
ip netns exec l6s sysctl -qw net.ipv6.conf.l6-s.accept_dad=0; ip netns exec l6c sysctl -qw net.ipv6.conf.l6-c.accept_dad=0
ip -n l6s link set l6-s up; ip -n l6c link set l6-c up
ip -n l6s addr add fd00:20::1/64 dev l6-s nodad; ip -n l6c addr add fd00:20::2/64 dev l6-c nodad
cleanup() { [ -n "${pid:-}" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; down; [ "$OUT" = "$W" ] && rm -rf "$W"; }
trap cleanup EXIT
# both link-local addresses usable before anything sends (accept_dad=0 makes them so at once)
for _ in $(seq 50); do
  ip -n l6c -6 addr show dev l6-c scope link | grep -q 'inet6 fe80' && ip -n l6s -6 addr show dev l6-s scope link | grep -q 'inet6 fe80' && break
  sleep 0.1
done
mkdir -p /run/kea
case "$S" in
dhcpd) DHCPD_BIN=$BIN LINK=l6-s METRICS=$METRICS ip netns exec l6s "$H/serve6.sh" >"$OUT/server.log" 2>&1 & pid=$! ;;
kea)
  cat > "$W/kea6.json" <<C
{ "Dhcp6": { "interfaces-config": { "interfaces": ["l6-s"] },
  "lease-database": { "type": "memfile", "persist": true, "name": "$W/kea-leases6.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 256 },
  "preferred-lifetime": 3000, "valid-lifetime": 4000, "renew-timer": 1000, "rebind-timer": 2000,
  "server-id": { "type": "LLT", "persist": false },
  "subnet6": [ { "id": 1, "subnet": "fd00:20::/64", "interface": "l6-s",
    "pools": [ { "pool": "fd00:20::1:0/96" } ],
    "option-data": [ { "name": "dns-servers", "data": "fd00:20::1" } ] } ],
  "loggers": [ { "name": "kea-dhcp6", "severity": "WARN", "output_options": [ { "output": "stdout" } ] } ] } }
C
  ip netns exec l6s kea-dhcp6 -c "$W/kea6.json" >"$OUT/server.log" 2>&1 & pid=$! ;;
esac
# ready once the server holds UDP port 547 (serve6.sh and ip netns exec exec the server itself)
for _ in $(seq 100); do ip netns exec l6s ss -ulpn 2>/dev/null | grep -q ':547 ' && break; sleep 0.1; done
if ! kill -0 "$pid" 2>/dev/null; then echo "$S did not start:"; tail -5 "$OUT/server.log"; exit 1; fi
cpu_ns() { cat /proc/"$pid"/task/*/sched 2>/dev/null | awk '/se.sum_exec_runtime/{s+=$3} END{printf "%.0f\n", s*1e6}'; }
# per thread: "tid name runtime_ms" (threads.txt gets each thread's CPU over the run)
threads() { for t in /proc/"$pid"/task/*; do echo "${t##*/} $(tr ' ' _ <"$t/comm") $(awk '/se.sum_exec_runtime/{print $3}' "$t/sched")"; done 2>/dev/null; }
snmp6() { ip netns exec "$1" awk -v k="$2" '$1==k{print $2}' /proc/net/snmp6; }
e0c=$(snmp6 l6c Udp6RcvbufErrors); e0s=$(snmp6 l6s Udp6RcvbufErrors)
c0=$(cpu_ns); threads >"$W/t0"
if [ -n "${PERF:-}" ]; then perf record -e cpu-clock -F 2000 -g -p "$pid" -o "$OUT/perf.data" -- sleep $((P+1)) >/dev/null 2>&1 & perfpid=$!; fi
TIMEFORMAT='%U %S %R'
{ time ip netns exec l6c timeout $((P+15)) "${GENCMD[@]}" -r "$R" -p "$P" -R "$N" >"$OUT/gen.txt" 2>&1; } 2>"$OUT/gen-time.txt"
c1=$(cpu_ns); threads >"$W/t1"
awk -v p="$P" 'NR==FNR{a[$1]=$3; next} {d=$3-a[$1]; if (d > 1) printf "%s %s %.0f ms (%.0f%% of one core)\n", $1, $2, d, d/p/10}' "$W/t0" "$W/t1" >"$OUT/threads.txt"
[ -n "${PERF:-}" ] && wait "$perfpid"
e1c=$(snmp6 l6c Udp6RcvbufErrors); e1s=$(snmp6 l6s Udp6RcvbufErrors)
for n in l6c l6s; do echo "$n $(ip netns exec $n awk '/^Udp6(InDatagrams|RcvbufErrors|OutDatagrams|SndbufErrors|InErrors) /{printf "%s=%s ", $1, $2}' /proc/net/snmp6)"; done >"$OUT/udp6.txt"
replies=$(awk '/REQUEST-REPLY/{f=1} f&&/received packets/{print $3; exit}' "$OUT/gen.txt")
drop=$(awk '/SOLICIT-ADVERTISE/{f=1} f&&/drops ratio/{print $3; exit}' "$OUT/gen.txt")
rdrop=$(awk '/REQUEST-REPLY/{f=1} f&&/drops ratio/{print $3; exit}' "$OUT/gen.txt")
cpu=$(awk -v a="$c0" -v b="$c1" -v n="${replies:-0}" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/1000/n; else print "n/a" }')
pcpu=$(awk '{ if ($3 > 0) printf "%.0f%%", ($1+$2)/$3*100 }' "$OUT/gen-time.txt")
extra=""
if [ "$S" = dhcpd ]; then
  sleep 2.5 # the pool gauges are a census taken every 2 s
  ip netns exec l6s curl -s "http://$METRICS/metrics" 2>/dev/null | grep -E '^dhcpd_v6_' >"$OUT/metrics.txt"
  m() { awk -v k="$1" 'index($0, k)==1{s+=$NF} END{printf "%d", s}' "$OUT/metrics.txt"; }
  extra="overload=$(m dhcpd_v6_overload) silent=$(m dhcpd_v6_silent) bad=$(m dhcpd_v6_bad) commit_errors=$(m dhcpd_v6_lease_commit_errors) bound=$(m 'dhcpd_v6_pool_used_addresses')"
else
  sleep 1
  extra="bound=$(awk -F, 'NR>1{print $1}' "$W/kea-leases6.csv" 2>/dev/null | sort -u | wc -l)"
fi
printf '%-6s offered=%-6s replies_per_s=%-6s solicit_drop=%s%% request_drop=%s%% cpu_us_per_exchange=%s %s_cpu=%s rcvbuf_errors=c%s/s%s %s\n' \
  "$S" "$R" "$(( ${replies:-0} / P ))" "$drop" "$rdrop" "$cpu" "$GEN" "$pcpu" \
  "$(( ${e1c:-0} - ${e0c:-0} ))" "$(( ${e1s:-0} - ${e0s:-0} ))" "$extra"
