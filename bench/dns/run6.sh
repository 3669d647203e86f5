#!/usr/bin/env bash
# The DNS bench over IPv6: dnsd, NSD, Knot and BIND (hickory-dns when installed) on ::1, the same
# zone and queries as the IPv4 bench (the shared mkzone.py, called read-only; dnsd serves the same
# hosts from mkhosts.py's host file, listening on [::1]:PORT), dnsperf -s ::1. Per server: start
# it, check its answers over ::1 with dig -6 (a wrong or missing answer stops the run, exit 1),
# then the same three figures as the IPv4 bench (../../../shared/bench/dns/peers.sh):
#   max qps   dnsperf -c 8 -q 500 -T 2 for SECONDS
#   CPU/query the server's own CPU time (every thread of it and its children) per answered query
#             at a fixed offered rate (RATE, default 40000 qps) for SECONDS
#   RSS       of the server's main process after both
# Needs root, bind9 nsd knot dnsperf dnsutils and a release build:
#   cargo build --release -p dnsd && bench/dns/run6.sh [seconds]
# DNSD_BIN=path picks the binary; HICKORY=/path/to/hickory-dns adds its row when not in PATH;
# ONLY="nsd dnsd" runs a subset.
set -eu
S=${1:-10}
RATE=${RATE:-40000}
H=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$H/../.." && pwd)
MKZONE=${MKZONE:-$ROOT/../shared/bench/dns/mkzone.py}
BIN=${DNSD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/dnsd}
ONLY=${ONLY:-bind9 nsd knot hickory dnsd}
[ -x "$BIN" ] || { echo "build first: cargo build --release -p dnsd ($BIN missing)" >&2; exit 1; }
[ -r "$MKZONE" ] || { echo "shared mkzone.py not found at $MKZONE (set MKZONE)" >&2; exit 1; }
for t in dig dnsperf python3; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
ip -6 addr show dev lo | grep -q 'inet6 ::1/' || { echo "::1 is not on lo (IPv6 disabled?)" >&2; exit 1; }

W=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT
python3 "$MKZONE" 1000 "$W"

# --- configurations, each server on its own port of ::1 only -----------------------------------
cat >"$W/named.conf" <<C
options { directory "$W"; listen-on { none; }; listen-on-v6 port 5311 { ::1; };
  recursion no; pid-file "$W/named.pid"; };
zone "it-ishin.com" { type master; file "$W/it-ishin.com.zone"; };
zone "10.in-addr.arpa" { type master; file "$W/10.in-addr.arpa.zone"; };
C
cat >"$W/nsd.conf" <<C
server:
  ip-address: ::1@5312
  do-ip4: no
  username: ""
  zonesdir: "$W"
  database: ""
  pidfile: "$W/nsd.pid"
  xfrdfile: "$W/xfrd.state"
  zonelistfile: "$W/zone.list"
  server-count: 2
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: it-ishin.com
  zonefile: it-ishin.com.zone
zone:
  name: 10.in-addr.arpa
  zonefile: 10.in-addr.arpa.zone
C
mkdir -p "$W/knot"
cat >"$W/knot.conf" <<C
server:
  listen: ::1@5313
  rundir: "$W/knot"
  user: root
database:
  storage: "$W/knot"
zone:
  - domain: it-ishin.com
    file: "$W/it-ishin.com.zone"
  - domain: 10.in-addr.arpa
    file: "$W/10.in-addr.arpa.zone"
C
cat >"$W/hickory.toml" <<C
listen_addrs_ipv6 = ["::1"]
group = "nogroup"
directory = "$W"
[[zones]]
zone = "it-ishin.com"
zone_type = "Primary"
[zones.stores]
type = "file"
zone_path = "it-ishin.com.zone"
[[zones]]
zone = "10.in-addr.arpa"
zone_type = "Primary"
[zones.stores]
type = "file"
zone_path = "10.in-addr.arpa.zone"
C
# dnsd: the IPv4 bench's host file with its one listen address moved to [::1].
python3 "$H/mkhosts.py" 1000 "$W/hosts.toml" 5314
sed -i 's|^listen = \["127.0.0.1:5314"\]$|listen = ["[::1]:5314"]|' "$W/hosts.toml"
grep -qx 'listen = \["\[::1\]:5314"\]' "$W/hosts.toml" || { echo "mkhosts.py's listen line changed; fix run6.sh" >&2; exit 1; }
"$BIN" --check --config "$W/hosts.toml" >/dev/null
mkdir -p "$W/dnsd"

# --- measurement ----------------------------------------------------------------------------------
tree_cpu_ns() { # exact CPU time (ns) of PID, all its threads and all its descendants' threads
    local pids=$1 new=$1 kids p
    while [ -n "$new" ]; do
        kids=
        for p in $new; do kids="$kids $(pgrep -P "$p" || true)"; done
        new=$(echo $kids)
        pids="$pids $new"
    done
    local ms=0
    for p in $pids; do
        # se.sum_exec_runtime is in ms with 6 decimals (the scheduler's own accounting)
        ms=$(awk -v acc="$ms" '/^se.sum_exec_runtime/{acc+=$3} END{printf "%.6f", acc}' /proc/"$p"/task/*/sched 2>/dev/null || echo "$ms")
    done
    awk -v ms="$ms" 'BEGIN{printf "%.0f", ms*1e6}'
}

# One dig over ::1: prints "RCODE|answer section, one line" (fails the run on no reply).
ask() { # port name type
    local out rcode
    out=$(dig -6 @::1 -p "$1" +time=2 +tries=2 +norecurse "$2" "$3") || { echo "no reply"; return; }
    rcode=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
    printf '%s|%s' "$rcode" "$(dig -6 @::1 -p "$1" +time=2 +tries=2 +norecurse +short "$2" "$3" | tr '\n' ' ' | sed 's/ $//')"
}

verify() { # name port: the workload's four kinds of answer, exactly, and one over TCP
    local name=$1 port=$2 got want bad=0 q
    while IFS=';' read -r q want; do
        # shellcheck disable=SC2086
        got=$(ask "$port" $q </dev/null)
        if [ "$got" != "$want" ]; then
            echo "FAIL $name over ::1: dig -6 @::1 -p $port $q gave '$got', want '$want'" >&2
            bad=1
        fi
    done <<'E'
host1.it-ishin.com A;NOERROR|10.0.0.1
host999.it-ishin.com A;NOERROR|10.0.3.231
231.3.0.10.in-addr.arpa PTR;NOERROR|host999.it-ishin.com.
nohost1.it-ishin.com A;NXDOMAIN|
host1.it-ishin.com AAAA;NOERROR|
host2.it-ishin.com A +tcp;NOERROR|10.0.0.2
E
    return $bad
}

bench() { # name port cmd...
    local name=$1 port=$2
    shift 2
    case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
    "$@" >"$W/$name.log" 2>&1 &
    PID=$!
    local up=0
    for _ in $(seq 100); do
        # (dig +short prints its ";; communications error" on stdout: match the address itself)
        if dig -6 @::1 -p "$port" +time=1 +tries=1 +short host1.it-ishin.com A 2>/dev/null | grep -qx '10\.0\.0\.1'; then
            up=1
            break
        fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ $up = 0 ]; then
        echo "FAIL $name: no answer on [::1]:$port; its log:" >&2
        tail -20 "$W/$name.log" >&2
        exit 1
    fi
    verify "$name" "$port" || { tail -5 "$W/$name.log" >&2; exit 1; }
    local qps c0 c1 n cpu rss
    qps=$(dnsperf -s ::1 -p "$port" -d "$W/queries.txt" -l "$S" -c 8 -q 500 -T 2 2>&1 |
        awk '/Queries per second/{print $4}')
    c0=$(tree_cpu_ns "$PID")
    dnsperf -s ::1 -p "$port" -d "$W/queries.txt" -l "$S" -c 8 -Q "$RATE" >"$W/$name.rate" 2>&1
    c1=$(tree_cpu_ns "$PID")
    n=$(awk '/Queries completed/{print $3}' "$W/$name.rate")
    cpu=$(awk -v a="$c0" -v b="$c1" -v n="${n:-0}" 'BEGIN{if (n>0) printf "%.2f", (b-a)/1000/n; else print "n/a"}')
    rss=$(ps -o rss= -p "$PID" | tr -d ' ')
    printf '%-8s ::1 max_qps=%-10.0f cpu_us_per_q@%s=%-6s rss_kb=%-8s completed@rate=%s\n' \
        "$name" "${qps:-0}" "$RATE" "$cpu" "$rss" "$n"
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
}

echo "# run6.sh $S s per figure, $(date -u '+%F %T') UTC, load:$(uptime | sed 's/.*load average://')"
bench bind9 5311 named -g -n 2 -c "$W/named.conf"
bench nsd 5312 nsd -d -c "$W/nsd.conf"
bench knot 5313 knotd -c "$W/knot.conf"
HICKORY=${HICKORY:-$(command -v hickory-dns || true)}
if [ -n "$HICKORY" ] && [ -x "$HICKORY" ]; then
    bench hickory 5315 "$HICKORY" -q -p 5315 -c "$W/hickory.toml"
fi
bench dnsd 5314 "$BIN" --user root --config "$W/hosts.toml" --state-dir "$W/dnsd" --runtime-dir "$W/dnsd" --log warn
