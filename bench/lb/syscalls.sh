#!/usr/bin/env bash
# System calls per proxied request: HAProxy (tcp mode) beside the lbd user-space proxy, on the
# workload of run.sh (wrk -t1 through VIP 10.30.1.120:80 to two nginx backends), each row in
# freshly made namespaces. Per row: the count of every system call the balancer made while wrk
# ran (perf stat on the syscalls:sys_enter_* tracepoints of all its threads) divided by the
# requests wrk completed, then the sequence of calls for one `Connection: close` request
# (strace -f, one curl), so the two can be compared call by call.
#
# The whole run holds /tmp/bench.lock (flock), so it never overlaps another benchmark.
# Needs root and: wrk curl haproxy nginx-light nftables iproute2 util-linux strace linux-perf.
#
# usage: bench/lb/syscalls.sh [seconds] [connections]
#   LBD=path/to/lbd      the binary (default $CARGO_TARGET_DIR/release/lbd)
#   LBD2=path/to/lbd     a second binary, as row lbd2 (before/after)
#   LBD_ENV, LBD2_ENV    environment (VAR=value ...) for the lbd / lbd2 rows
#   ROWS="haproxy lbd"   rows, in order (lbd2 when LBD2 is set)
#   MODES="nc ka"        new connection per request (nc) and/or keep-alive (ka)
#   TRACE=1              also the strace sequence of one Connection: close request per row
#   PROFILE=0            1: instead of counting calls, sample every CPU while wrk runs (perf
#                        record -a) and print the share of each command (wrk, nginx, the
#                        balancer, idle) and the balancer's hottest kernel and user symbols
set -u
if [ -z "${LB_BENCH_LOCKED:-}" ]; then
  echo "waiting for /tmp/bench.lock ..." >&2
  LB_BENCH_LOCKED=1 exec flock /tmp/bench.lock "$0" "$@"
fi
S=${1:-5}; C=${2:-64}
MODES=${MODES:-nc ka}; TRACE=${TRACE:-1}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench/lb}
LBD=${LBD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/lbd}
ROWS=${ROWS:-haproxy lbd${LBD2:+ lbd2}}
W=$(mktemp -d); chmod 755 "$W"; mkdir "$W/out"   # out/: not in the directory lbd watches
PIDS=
stop_backends() {
  for p in $PIDS; do kill "$p" 2>/dev/null; { wait "$p"; } 2>/dev/null; done; PIDS=
}
cleanup() { stop_backends; "$SHARED/netns.sh" down; rm -rf "$W"; }
trap cleanup EXIT
. "$HERE/peer-configs.sh"; peer_configs off
lbd_config proxy > "$W/lbd.toml"
wait_port() {
  for _ in $(seq 100); do
    ip netns exec lbc timeout 1 bash -c "exec 3<>/dev/tcp/$1/80" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
fresh() {
  stop_backends; "$SHARED/netns.sh" down; "$SHARED/netns.sh" up
  for n in web1 web2; do ip netns exec $n nginx -c "$W/$n.conf" & PIDS="$PIDS $!"; done
  wait_port 10.30.2.10 && wait_port 10.30.2.11 || { echo "backends did not start"; exit 1; }
}
# Packets the balancer's namespace sent to both backends and received from them (the bridge
# ports web1-p and web2-p; their rx is what the backends sent): "to from".
backend_packets() {
  ip netns exec lb cat /sys/class/net/web1-p/statistics/tx_packets /sys/class/net/web2-p/statistics/tx_packets \
    /sys/class/net/web1-p/statistics/rx_packets /sys/class/net/web2-p/statistics/rx_packets |
    awk '{v[NR] = $1} END {print v[1] + v[2], v[3] + v[4]}'
}
EVENTS="accept accept4 socket setsockopt getsockopt connect epoll_ctl epoll_wait epoll_pwait
  read readv recvfrom recvmsg write writev sendto sendmsg shutdown close splice pipe2
  getsockname getpeername fcntl ioctl futex sched_yield clock_gettime"
EV=$(for e in $EVENTS; do printf 'syscalls:sys_enter_%s,' "$e"; done)
EV="${EV}raw_syscalls:sys_enter,task-clock,context-switches,cpu-migrations"
start() { # row -> sets P
  case $1 in
    haproxy)
      ip -n lb addr add 10.30.1.120/32 dev lb0
      ip netns exec lb haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & P=$! ;;
    lbd|lbd2)
      local bin=$LBD e=${LBD_ENV:-}; [ "$1" = lbd2 ] && bin=$LBD2 e=${LBD2_ENV:-}
      env $e ip netns exec lb "$bin" --user root -c "$W/lbd.toml" --runtime-dir "$W/run-$1" >"$W/$1.log" 2>&1 & P=$!
      for _ in $(seq 300); do grep -q "lbd ready" "$W/$1.log" && break; sleep 0.1; done ;;
  esac
  wait_port 10.30.1.120 || { echo "$1 did not open the VIP port"; cat "$W/$1.log"; }
}
echo "syscalls per request: ${S}s, $C connections, rows: $ROWS; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for row in $ROWS; do
  for m in $MODES; do
    fresh; start "$row"
    hdr=(); [ "$m" = nc ] && hdr=(-H 'Connection: close')
    if [ "${PROFILE:-0}" = 1 ]; then
      perf record -q -a -g -F 997 -o "$W/out/perf.data" -- sleep "$S" 2>/dev/null &
    else
      perf stat -x, -e "$EV" -p "$P" -o "$W/out/perf" -- sleep $((S + 1)) &
    fi
    PP=$!
    pk0=$(ip netns exec lbc cat /sys/class/net/lbc0/statistics/rx_packets /sys/class/net/lbc0/statistics/tx_packets)
    bk0=$(backend_packets)
    out=$(ip netns exec lbc wrk -t1 -c"$C" -d"${S}s" "${hdr[@]}" http://10.30.1.120/ 2>&1)
    pk1=$(ip netns exec lbc cat /sys/class/net/lbc0/statistics/rx_packets /sys/class/net/lbc0/statistics/tx_packets)
    bk1=$(backend_packets)
    wait $PP
    reqs=$(awk '/requests in/{print $1}' <<<"$out"); rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    grep -E 'Socket errors|Non-2xx' <<<"$out"
    if [ "${PROFILE:-0}" = 1 ]; then
      echo "== $row $m: $reqs requests ($rps req/s); CPU samples by command:"
      perf report -q -i "$W/out/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null |
        grep -v '^$' | grep -v '^#' | grep '%' | head -8 | sed 's/^/  /'
      echo "  balancer's samples by object:"
      perf report -q -i "$W/out/perf.data" --no-children --comms "$(cat /proc/$P/comm)",lbd-proxy-0,lbd-proxy-1 \
        --sort dso --stdio -g none 2>/dev/null | grep '%' | head -6 | sed 's/^/  /'
      echo "  balancer's top symbols:"
      perf report -q -i "$W/out/perf.data" --no-children --comms "$(cat /proc/$P/comm)",lbd-proxy-0,lbd-proxy-1 \
        --sort sym --stdio -g none 2>/dev/null | grep '%' | head -25 | sed 's/^/  /'
      if [ -n "${CALLERS:-}" ]; then
        echo "  callers of $CALLERS in the balancer:"
        perf report -q -i "$W/out/perf.data" --no-children --comms "$(cat /proc/$P/comm)",lbd-proxy-0,lbd-proxy-1 \
          --symbols "$CALLERS" --stdio -G 2>/dev/null | grep -v '^$' | head -60 | sed 's/^/  /'
      fi
      kill "$P"; wait "$P" 2>/dev/null
      continue
    fi
    echo "== $row $m: $reqs requests ($rps req/s); client packets per request (to client / from client):" \
      "$(echo $pk0 $pk1 | awk -v n="$reqs" '{printf "%.2f / %.2f", ($3 - $1) / n, ($4 - $2) / n}')"
    echo "   backend links' packets per request (to the backends / from them):" \
      "$(echo $bk0 $bk1 | awk -v n="$reqs" '{printf "%.2f / %.2f", ($3 - $1) / n, ($4 - $2) / n}')"
    echo "   calls per request:"
    awk -F, -v n="$reqs" '$3 ~ /sys_enter/ && $1 + 0 > 0 {
        name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "ALL"
        printf "  %-14s %7.3f\n", name, $1 / n }
      $3 == "task-clock" { printf "  CPU us/request %5.2f (task-clock, all threads)\n", $1 * 1000 / n }
      $3 == "context-switches" || $3 == "cpu-migrations" { printf "  %-14s %7.3f\n", $3, $1 / n }' "$W/out/perf"
    if [ "$TRACE" = 1 ] && [ "$m" = nc ]; then
      strace -f -qq -p "$P" -o "$W/out/strace" -e 'trace=!futex,clock_gettime,madvise' &
      SP=$!; sleep 0.5
      ip netns exec lbc curl -s -o /dev/null -H 'Connection: close' http://10.30.1.120/
      sleep 0.5; kill -INT $SP; wait $SP 2>/dev/null
      echo "-- $row: calls for one Connection: close request (strace -f):"
      grep -vE 'epoll_wait\(.*= 0$|resumed> \) *= 0$|timerfd|sendto\(.*, 10.30.2|getpid' "$W/out/strace" |
        sed -E 's/(\(.{0,110}).*(\) += .*)$/\1...\2/' | sed 's/^/   /'
    fi
    kill "$P"; wait "$P" 2>/dev/null
  done
done
