#!/usr/bin/env bash
# One server alone on the shared workload (perfdhcp as a relay, 10.20.0.0/16, -R clients), for
# profiling and memory figures; own namespaces (dps/dpc) so it never clashes with peers.sh.
# usage: solo.sh dhcpd|kea|isc RATE SECONDS [CLIENTS]
#   PERF=1      record a CPU profile of the server (perf, cpu-clock) into $OUT/perf.data
#   OUT=dir     keep logs, perfdhcp output and the profile there (default: a temporary folder)
# Prints: acks/s, DISCOVER drops, server CPU us per exchange (exact scheduler runtime), RSS before
# and after (VmRSS, VmHWM), and the number of bound leases the server holds at the end.
#   PERFDHCP_ARGS="-g single"  extra perfdhcp options
#   BIG=1       a /12 network with a 131,072-address pool (the /16 pool of peers.sh holds 64,000
#               leases at most), for the memory figure at 100,000 leases
#   HUGE=1      the /12 with 917,248 addresses (10.17.0.0-10.30.255.255 without 10.20.0.0/24, where
#               the server and the relay sit), so a 10 s run at 30,000/s cannot exhaust the pool
#   GEN=loadgen the light generator in loadgen/ (same command line, same report layout) instead of
#               perfdhcp; cargo builds it (release) into loadgen/target (LOADGEN_TARGET_DIR) unless
#               LOADGEN_BIN names a binary. LOADGEN_ARGS: its extra options (--tick, --drain ...)
set -u
S=${1:-dhcpd}; R=${2:-3000}; P=${3:-10}; N=${4:-1000000}
H=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$H/../.." && pwd)
export W=$(mktemp -d); OUT=${OUT:-$W}; mkdir -p "$OUT"
BIN=${DHCPD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dhcpd}
down() { ip netns del dps 2>/dev/null; ip netns del dpc 2>/dev/null; true; }
# POOL: one or more ranges, space-separated (serve.sh writes one [[subnet.pool]] each)
if [ -n "${HUGE:-}" ]; then LEN=12; NET=10.16.0.0/12; POOL="10.17.0.0-10.19.255.255 10.20.1.0-10.30.255.255"; MASK=255.240.0.0; SUB=10.16.0.0
elif [ -n "${BIG:-}" ]; then LEN=12; NET=10.16.0.0/12; POOL=10.17.0.0-10.18.255.255; MASK=255.240.0.0; SUB=10.16.0.0
else LEN=16; NET=10.20.0.0/16; POOL=10.20.1.0-10.20.250.255; MASK=255.255.0.0; SUB=10.20.0.0; fi
KPOOLS=$(for r in $POOL; do printf '{ "pool": "%s - %s" },' "${r%-*}" "${r#*-}"; done); KPOOLS=${KPOOLS%,}
ISCRANGES=$(for r in $POOL; do printf 'range %s %s; ' "${r%-*}" "${r#*-}"; done)
GEN=${GEN:-perfdhcp}
# METRICS= (empty) runs dhcpd without its metrics endpoint and status page (bench/pagecost.sh)
METRICS=${METRICS-127.0.0.1:9167}
case "$GEN" in
perfdhcp) GENCMD=(perfdhcp -4 ${PERFDHCP_ARGS:-}) ;;
loadgen)
  if [ -z "${LOADGEN_BIN:-}" ]; then
    LT=${LOADGEN_TARGET_DIR:-$H/loadgen/target}; LOADGEN_BIN=$LT/release/loadgen
    # builds it when missing (and when its sources changed; a no-op otherwise)
    cargo build --release --locked --quiet --manifest-path "$H/loadgen/Cargo.toml" --target-dir "$LT" >&2 || exit 1
  fi
  GENCMD=("$LOADGEN_BIN" ${LOADGEN_ARGS:-}) ;;
*) echo "GEN=$GEN: use perfdhcp or loadgen" >&2; exit 2 ;;
esac
down
ip netns add dps; ip netns add dpc
ip link add dp-s type veth peer name dp-c
ip link set dp-s netns dps; ip link set dp-c netns dpc
ip -n dps addr add 10.20.0.1/$LEN dev dp-s; ip -n dpc addr add 10.20.0.2/$LEN dev dp-c
for n in dps dpc; do ip -n $n link set lo up; done
ip -n dps link set dp-s up; ip -n dpc link set dp-c up
cleanup() { [ -n "${pid:-}" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; down; [ "$OUT" = "$W" ] && rm -rf "$W"; }
trap cleanup EXIT
mkdir -p /run/kea
case "$S" in
dhcpd) DHCPD_BIN=$BIN METRICS=$METRICS NETWORK=$NET POOL="$POOL" ip netns exec dps "$H/serve.sh" >"$OUT/server.log" 2>&1 & pid=$! ;;
kea)
  cat > "$W/kea.json" <<C
{ "Dhcp4": { "interfaces-config": { "interfaces": ["dp-s"], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$W/kea-leases4.csv", "lfc-interval": 0 },
  "multi-threading": { "enable-multi-threading": true, "thread-pool-size": 2, "packet-queue-size": 256 },
  "valid-lifetime": 3600, "authoritative": true,
  "subnet4": [ { "id": 1, "subnet": "$NET", "pools": [ $KPOOLS ],
    "option-data": [ { "name": "routers", "data": "10.20.0.1" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "stdout" } ] } ] } }
C
  ip netns exec dps kea-dhcp4 -c "$W/kea.json" >"$OUT/server.log" 2>&1 & pid=$! ;;
isc)
  printf 'authoritative;\ndefault-lease-time 3600; max-lease-time 7200;\nsubnet %s netmask %s { %soption routers 10.20.0.1; }\n' "$SUB" "$MASK" "$ISCRANGES" > "$W/dhcpd.conf"
  touch "$W/dhcpd.leases"
  ip netns exec dps dhcpd -f -4 -cf "$W/dhcpd.conf" -lf "$W/dhcpd.leases" -pf "$W/dhcpd.pid" dp-s >"$OUT/server.log" 2>&1 & pid=$! ;;
*) echo "usage: solo.sh dhcpd|kea|isc RATE SECONDS [CLIENTS]" >&2; exit 2 ;;
esac
# the server process itself (serve.sh execs dhcpd; ip netns exec execs too)
for _ in $(seq 50); do ip netns exec dps ss -ulpn 2>/dev/null | grep -q ':67 ' && break; sleep 0.1; done
cpu_ns() { cat /proc/"$pid"/task/*/sched 2>/dev/null | awk '/se.sum_exec_runtime/{s+=$3} END{printf "%.0f\n", s*1e6}'; }
mem() { awk '/VmRSS|VmHWM/{printf "%s%s kB ", $1, $2}' /proc/"$pid"/status; }
echo "$S empty: $(mem)"
c0=$(cpu_ns)
( t=0; while kill -0 "$pid" 2>/dev/null; do echo "$t $(awk '/VmRSS|VmHWM/{printf "%s ", $2}' /proc/"$pid"/status)"; sleep 0.1; t=$((t+1)); done ) >"$OUT/rss.txt" 2>/dev/null & rsspid=$!
if [ -n "${PERF:-}" ]; then perf record -e cpu-clock -F 2000 -g -p "$pid" -o "$OUT/perf.data" -- sleep $((P+2)) >/dev/null 2>&1 & perfpid=$!; fi
if [ -n "${STRACE:-}" ]; then timeout $((P+2)) strace -f -c -p "$pid" -o "$OUT/strace.txt" & stpid=$!; fi
TIMEFORMAT='%U %S %R'
{ time ip netns exec dpc timeout $((P+15)) "${GENCMD[@]}" -l 10.20.0.2 -r "$R" -p "$P" -R "$N" 10.20.0.1 >"$OUT/perf.txt" 2>&1; } 2>"$OUT/perfdhcp-time.txt"
c1=$(cpu_ns)
# UDP counters on both sides (RcvbufErrors: datagrams the kernel dropped at a full socket)
for n in dpc dps; do echo "$n $(ip netns exec $n nstat -az 2>/dev/null | awk '/^Udp(InDatagrams|RcvbufErrors|OutDatagrams|SndbufErrors) /{printf "%s=%s ", $1, $2}')"; done >"$OUT/udp.txt"
[ -n "${PERF:-}" ] && wait "$perfpid"
[ -n "${STRACE:-}" ] && wait "$stpid"
acks=$(awk '/REQUEST-ACK/{f=1} f&&/received packets/{print $3; exit}' "$OUT/perf.txt")
drop=$(awk '/DISCOVER-OFFER/{f=1} f&&/drops ratio/{print $3; exit}' "$OUT/perf.txt")
rdrop=$(awk '/REQUEST-ACK/{f=1} f&&/drops ratio/{print $3; exit}' "$OUT/perf.txt")
cpu=$(awk -v a="$c0" -v b="$c1" -v n="${acks:-0}" 'BEGIN{ if (n>0) printf "%.1f", (b-a)/1000/n; else print "n/a" }')
# memory now, before anything asks the server for its lease list
m=$(mem)
if [ "$S" = dhcpd ] && [ -n "$METRICS" ]; then
  ip netns exec dps curl -s "http://$METRICS/metrics" 2>/dev/null |
    grep -E '^dhcpd_(received_packets|overload_drops|admission_drops|sent_replies|silent_requests|bad_packets|lease_commits|requests|lease_commit_wait)' >"$OUT/metrics.txt"
fi
sleep 1
case "$S" in
dhcpd) leases=$("$BIN" leases --state-dir "$W" --config "$W/etc/hosts.toml" --json 2>/dev/null | grep -o '"state": *"bound"' | wc -l) ;;
kea) leases=$(awk -F, 'NR>1{print $1}' "$W/kea-leases4.csv" | sort -u | wc -l) ;;
isc) leases=$(grep -c '^lease ' "$W/dhcpd.leases") ;;
esac
# the generator's own CPU share of one core over its run (it shares the 2 cores with the server),
# and its CPU per completed exchange
pcpu=$(awk '{ if ($3 > 0) printf "%.0f%%", ($1+$2)/$3*100 }' "$OUT/perfdhcp-time.txt")
gus=$(awk -v n="${acks:-0}" '{ if (n > 0) printf "%.1f", ($1+$2)*1e6/n; else print "n/a" }' "$OUT/perfdhcp-time.txt")
kill "$rsspid" 2>/dev/null; wait "$rsspid" 2>/dev/null
printf '%-6s offered=%-6s acks_per_s=%-6s discover_drop=%s%% request_drop=%s%% cpu_us_per_exchange=%s %s_cpu=%s %s_us_per_exchange=%s bound_leases=%s %s\n' \
  "$S" "$R" "$(( ${acks:-0} / P ))" "$drop" "$rdrop" "$cpu" "$GEN" "$pcpu" "$GEN" "$gus" "$leases" "$m"
