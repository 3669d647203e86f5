#!/usr/bin/env bash
# lbd beside its peers, same run, same wrk load: the workload of ../shared/bench/lb/peers.sh
# (wrk -t1 through VIP 10.30.1.120:80 to two nginx backends, NAT style, keep-alive and
# `Connection: close`), with rows for: direct to web1, HAProxy (tcp mode), nginx stream, a
# hand-written nftables DNAT rule (numgen), lbd kernel data plane, lbd user-space proxy.
#
# Each row gets freshly made namespaces (conntrack is per namespace: TIME_WAIT entries left by
# one row would otherwise meet the next row's SYNs on reused client ports). The compared rows
# run in blocks of four, A B B A (nftables, lbd-kernel, lbd-kernel, nftables; haproxy,
# lbd-proxy, lbd-proxy, haproxy), the next round B A A B, REPS rounds; the summary gives each
# row's median and range and each pair's ratio per round (sum of the block's lbd rows over the
# sum of its peer rows, so load drifting during a block cancels out).
#
# FAMILY=6 runs every row over IPv6 instead: the same namespaces with IPv6 added (VIP
# fd30:1::120, backends fd30:2::10 and fd30:2::11), HAProxy, nginx stream and the backends on
# those addresses, the hand rule in `table ip6` (`ip6 daddr ... dnat to numgen ...`), lbd's
# service on the IPv6 VIP (its kernel plane in `table ip6 lbd`), wrk to http://[fd30:1::120]/.
#
# The whole run holds /tmp/bench.lock (flock), so it never overlaps another benchmark.
# Needs root and: wrk haproxy nginx-light libnginx-mod-stream nftables iproute2 util-linux.
#
# usage: bench/lb/run.sh [seconds] [connections]
#   LBD=path/to/lbd   the binary (default $CARGO_TARGET_DIR/release/lbd)
#   REPS=3            rounds of the compared blocks
#   PAIRS="kernel proxy"  which blocks (kernel: nftables vs lbd-kernel; proxy: haproxy vs
#                     lbd-proxy; nosplice: lbd-proxy vs lbd-proxy with LBD_PROXY_SPLICE=0;
#                     threads: lbd-proxy vs lbd-proxy with LBD_PROXY_THREADS=1;
#                     before: lbd-proxy vs lbd-proxy-before, the binary $LBD_BEFORE;
#                     ceiling: HAProxy vs the leanest relay (bench/lb/ceiling, $CEILING);
#                     ceiling-lbd: that relay vs lbd-proxy)
#   CEILING=path      the lb-ceiling binary (default $CARGO_TARGET_DIR/ceiling/release/lb-ceiling)
#   LBD_BYTES=true    lbd's services count bytes per backend (`byte-counters`; default false)
#   LBD_BEFORE=path   an earlier lbd binary for PAIRS=before (before/after in one run)
#   PEERS=1           also direct and nginx stream rows, once at the start (0: skip)
#   SIZE=0            response body in bytes (0: the 15-byte "hello from webN" page; e.g.
#                     1048576 for a 1 MiB file, to see large transfers)
#   MODES="ka nc"     keep-alive (ka) and/or new connection per request (nc)
#   PIN=1             wrk on CPU 0, balancer and backends on the other CPUs (taskset), every row
#   FAMILY=4          4 or 6: the address family of every row (the VIP, the backends, the rule)
set -u
if [ -z "${LB_BENCH_LOCKED:-}" ]; then
  echo "waiting for /tmp/bench.lock ..." >&2
  LB_BENCH_LOCKED=1 exec flock /tmp/bench.lock "$0" "$@"
fi
S=${1:-10}; C=${2:-64}
REPS=${REPS:-3}; PAIRS=${PAIRS:-kernel proxy}; PEERS=${PEERS:-1}; SIZE=${SIZE:-0}
MODES=${MODES:-ka nc}; PIN=${PIN:-0}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench/lb}
LBD=${LBD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/lbd}
CEILING=${CEILING:-${CARGO_TARGET_DIR:-$ROOT/target}/ceiling/release/lb-ceiling}
[ -x "$LBD" ] || { echo "no lbd binary at $LBD: cargo build --release -p lbd (or set LBD=)"; exit 1; }
case " $PAIRS " in *" before "*) [ -x "${LBD_BEFORE:-}" ] || { echo "PAIRS=before needs LBD_BEFORE=<lbd binary>"; exit 1; } ;; esac
W=$(mktemp -d); chmod 755 "$W"   # nginx's workers (www-data) read the pages under it
RES=$W/results   # lines: round row mode req/s
: > "$RES"
if [ "$PIN" = 1 ]; then
  N=$(nproc); [ "$N" -ge 2 ] || { echo "PIN=1 needs 2 CPUs"; exit 1; }
  CLI="taskset -c 0"; SRV="taskset -c 1-$((N - 1))"
else
  CLI=; SRV=
fi
stop_backends() {
  for p in ${PIDS:-}; do kill "$p" 2>/dev/null; { wait "$p"; } 2>/dev/null; done; PIDS=
}
cleanup() { stop_backends; "$SHARED/netns.sh" down; rm -rf "$W"; }
trap cleanup EXIT
URLPATH=/; SENDFILE=off
[ "$SIZE" != 0 ] && { URLPATH=/big.bin; SENDFILE=on; }
. "$HERE/peer-configs.sh"; lb_family; peer_configs "$SENDFILE"
VIPURL="http://$(urlhost $VIP)$URLPATH"
[ "$SIZE" != 0 ] && for n in web1 web2; do head -c "$SIZE" /dev/zero > "$W/$n/big.bin"; done
# Waits (bounded) until a TCP connect from the client namespace to $1:80 succeeds.
wait_port() {
  for _ in $(seq 100); do
    ip netns exec lbc timeout 1 bash -c "exec 3<>/dev/tcp/$1/80" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
fresh() { # new namespaces, backends started, VIP by hand unless $1 = novip
  stop_backends; "$SHARED/netns.sh" down; "$SHARED/netns.sh" up; netns6_up
  for n in web1 web2; do ip netns exec $n $SRV nginx -c "$W/$n.conf" & PIDS="${PIDS:-} $!"; done
  [ "${1:-}" = novip ] || ip -n lb addr add $VIP_ADD dev lb0
  wait_port $WEB1 && wait_port $WEB2 || { echo "backends did not start"; exit 1; }
}
cat > "$W/nginx-lb.conf" <<C
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; pid $W/lb.pid; error_log $W/lb.err; daemon off;
events { worker_connections 8192; }
stream { upstream b { server $(urlhost $WEB1):80; server $(urlhost $WEB2):80; } server { listen $(urlhost $VIP):80; proxy_pass b; } }
C
for dp in kernel proxy; do lbd_config "$dp" "${LBD_BYTES:-false}" > "$W/lbd-$dp.toml"
done
ROUND=0
bench() { # name url
  local r m out
  for m in $MODES; do
    if [ "$m" = ka ]; then
      out=$(ip netns exec lbc $CLI wrk -t1 -c"$C" -d"${S}s" "$2" 2>&1)
    else
      out=$(ip netns exec lbc $CLI wrk -t1 -c"$C" -d"${S}s" -H 'Connection: close' "$2" 2>&1)
    fi
    r=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    # Socket errors and non-2xx answers are reported, not hidden in the rate.
    if grep -qE 'Socket errors|Non-2xx' <<<"$out"; then
      echo "  $1 $m: $(grep -E 'Socket errors|Non-2xx' <<<"$out" | tr -s ' ' | tr '\n' ' ')"
    fi
    echo "$ROUND $1 $m ${r:-0}" >> "$RES"
    printf '  round %s %-14s %s %s req/s\n' "$ROUND" "$1" "$m" "${r:-FAILED}"
  done
}
# Starts lbd ($1 = kernel|proxy) in namespace lb and waits for "lbd ready" (up to 30 s). On a
# miss, shows the log and where each lbd thread is blocked (wchan, kernel stack), and skips the
# row instead of ending the run.
row_lbd() { # name dp [env...]
  local name=$1 dp=$2; shift 2
  fresh novip   # lbd places the VIP itself
  local log=$W/$name.$ROUND.log t0=$(date +%s%N) bin=$LBD
  [ "$name" = lbd-proxy-before ] && bin=$LBD_BEFORE
  env "$@" ip netns exec lb $SRV "$bin" --user root -c "$W/lbd-$dp.toml" --runtime-dir "$W/run-$name" >"$log" 2>&1 & P=$!
  for _ in $(seq 300); do
    grep -q "lbd ready" "$log" && break
    kill -0 $P 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q "lbd ready" "$log"; then
    echo "  $name did not become ready within 30 s (or exited); its log:"; sed 's/^/    /' "$log"
    for t in /proc/$P/task/*; do
      [ -d "$t" ] && echo "    thread $(cat "$t/comm") wchan=$(cat "$t/wchan" 2>/dev/null)" \
        && sed 's/^/      /' "$t/stack" 2>/dev/null
    done
    kill $P 2>/dev/null; wait $P 2>/dev/null; return
  fi
  echo "  $name ready after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  wait_port $VIP || echo "  $name: VIP port not answering"
  bench "$name" "$VIPURL"
  kill $P; wait $P 2>/dev/null
}
row_nftables() {
  fresh; ip netns exec lb nft -f - <<N
table $NFT lbbench {
  chain pre {
    type nat hook prerouting priority dstnat;
    $NFT daddr $VIP tcp dport 80 dnat to numgen inc mod 2 map { 0 : $WEB1, 1 : $WEB2 }
  }
}
N
  bench nftables "$VIPURL"; ip netns exec lb nft delete table $NFT lbbench
}
row_daemon() { # name command...
  local name=$1; shift
  fresh; ip netns exec lb $SRV "$@" >"$W/$name.log" 2>&1 & P=$!
  wait_port $VIP || echo "  $name did not open the VIP port"
  bench "$name" "$VIPURL"; kill $P; wait $P 2>/dev/null
}
row() {
  case $1 in
    nftables) row_nftables ;;
    haproxy) row_daemon haproxy haproxy -f "$W/haproxy.cfg" -db ;;
    nginx) row_daemon nginx nginx -c "$W/nginx-lb.conf" ;;
    direct) fresh; bench direct "http://$(urlhost $WEB1)$URLPATH" ;;
    lbd-kernel) row_lbd lbd-kernel kernel ;;
    lbd-proxy) row_lbd lbd-proxy proxy ;;
    lbd-proxy-nosplice) row_lbd lbd-proxy-nosplice proxy LBD_PROXY_SPLICE=0 ;;
    lbd-proxy-1t) row_lbd lbd-proxy-1t proxy LBD_PROXY_THREADS=1 ;;
    lbd-proxy-before) row_lbd lbd-proxy-before proxy ;;
    ceiling) row_daemon ceiling "$CEILING" "$(urlhost $VIP):80" "$(urlhost $WEB1):80" "$(urlhost $WEB2):80" ;;
  esac
}
block() { # peer lbd: A B B A on even rounds, B A A B on odd ones
  if [ $((ROUND % 2)) = 0 ]; then row "$1"; row "$2"; row "$2"; row "$1"
  else row "$2"; row "$1"; row "$1"; row "$2"; fi
}
echo "lbd bench: ${S}s per figure, $C connections, REPS=$REPS PAIRS='$PAIRS' SIZE=$SIZE MODES='$MODES' PIN=$PIN FAMILY=${FAMILY:-4} (VIP $VIP)"
echo "  lbd: $LBD; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PEERS" = 1 ]; then row direct; row nginx; fi
for ROUND in $(seq 0 $((REPS - 1))); do
  for p in $PAIRS; do
    case $p in
      kernel) block nftables lbd-kernel ;;
      proxy) block haproxy lbd-proxy ;;
      nosplice) block lbd-proxy-nosplice lbd-proxy ;;
      threads) block lbd-proxy-1t lbd-proxy ;;
      before) block lbd-proxy-before lbd-proxy ;;
      ceiling) block haproxy ceiling ;;
      ceiling-lbd) block ceiling lbd-proxy ;;
    esac
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
# Summary: per row and mode, median [min-max] over every run of the row; then per pair, the
# ratio within each round (sum of the lbd rows / sum of the peer rows of that block).
echo
echo "row                 mode   n  median   [min - max] req/s"
for name in $(awk '{print $2}' "$RES" | awk '!seen[$0]++'); do
  for m in $MODES; do
    awk -v r="$name" -v m="$m" '$2 == r && $3 == m {print $4}' "$RES" | sort -n | awk -v r="$name" -v m="$m" '
      { v[NR] = $1 }
      END { if (NR == 0) exit
            med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%-19s %-4s %3d  %7.0f  [%.0f - %.0f]\n", r, m, NR, med, v[1], v[NR] }'
  done
done
ratio() { # lbd peer target
  for m in $MODES; do
    awk -v a="$1" -v b="$2" -v m="$m" -v t="$3" '
      $3 == m && $2 == a { A[$1] += $4; na[$1]++ }
      $3 == m && $2 == b { B[$1] += $4; nb[$1]++ }
      END { n = 0
            for (k in A) if ((k in B) && B[k] > 0) { q[++n] = (A[k] / na[k]) / (B[k] / nb[k]) }
            if (n == 0) exit
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (q[j] < q[i]) { x = q[i]; q[i] = q[j]; q[j] = x }
            med = (n % 2) ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
            s = ""; for (i = 1; i <= n; i++) s = s sprintf(" %.2f", q[i])
            printf "%-18s / %-18s %-3s per round:%s  median %.2fx (target >= %s)\n", a, b, m, s, med, t }' "$RES"
  done
}
echo
for p in $PAIRS; do
  case $p in
    kernel) ratio lbd-kernel nftables 0.98 ;;
    proxy) ratio lbd-proxy haproxy 1.0 ;;
    nosplice) ratio lbd-proxy lbd-proxy-nosplice - ;;
    threads) ratio lbd-proxy lbd-proxy-1t - ;;
    before) ratio lbd-proxy lbd-proxy-before - ;;
    ceiling) ratio ceiling haproxy - ;;
    ceiling-lbd) ratio lbd-proxy ceiling - ;;
  esac
done
# lbd kernel vs HAProxy: different blocks of the same rounds, so per round means.
case " $PAIRS " in *" kernel "*) case " $PAIRS " in *" proxy "*) ratio lbd-kernel haproxy 1.1 ;; esac ;; esac
