#!/usr/bin/env bash
# lbd beside its peers, same run, same wrk load: the workload of ../shared/bench/lb/peers.sh
# (wrk -t1 through VIP 10.30.1.120:80 to two nginx backends, NAT style, keep-alive and
# `Connection: close`), with rows for: direct to web1, HAProxy (tcp mode), nginx stream, a
# hand-written nftables DNAT rule (numgen), lbd kernel data plane, lbd user-space proxy.
# Each row gets freshly made namespaces (conntrack is per namespace: TIME_WAIT entries left by
# one row would otherwise meet the next row's SYNs on reused client ports).
# Needs root and: wrk haproxy nginx-light libnginx-mod-stream nftables iproute2.
# usage: bench/lb/run.sh [seconds] [connections]     (LBD=path/to/lbd to pick the binary;
#        ABBA=1 runs each compared pair as A B B A)
set -u
S=${1:-10}; C=${2:-64}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench/lb}
LBD=${LBD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/lbd}
[ -x "$LBD" ] || { echo "no lbd binary at $LBD: cargo build --release -p lbd (or set LBD=)"; exit 1; }
W=$(mktemp -d)
stop_backends() {
  for p in ${PIDS:-}; do kill "$p" 2>/dev/null; { wait "$p"; } 2>/dev/null; done; PIDS=
}
cleanup() { stop_backends; "$SHARED/netns.sh" down; rm -rf "$W"; }
trap cleanup EXIT
for n in web1 web2; do
  mkdir -p "$W/$n"; echo "hello from $n" > "$W/$n/index.html"
  cat > "$W/$n.conf" <<C
worker_processes 1; pid $W/$n.pid; error_log $W/$n.err; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; server { listen 80 reuseport; root $W/$n; } }
C
done
fresh() { # new namespaces, backends started, VIP by hand unless $1 = novip
  stop_backends; "$SHARED/netns.sh" down; "$SHARED/netns.sh" up
  for n in web1 web2; do ip netns exec $n nginx -c "$W/$n.conf" & PIDS="${PIDS:-} $!"; done
  [ "${1:-}" = novip ] || ip -n lb addr add 10.30.1.120/32 dev lb0
  for _ in $(seq 50); do
    ip netns exec lbc bash -c 'exec 3<>/dev/tcp/10.30.2.10/80 && exec 4<>/dev/tcp/10.30.2.11/80' 2>/dev/null && break
    sleep 0.1
  done
}
cat > "$W/haproxy.cfg" <<C
global
  maxconn 8000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend f
  bind 10.30.1.120:80
  default_backend b
backend b
  balance roundrobin
  server web1 10.30.2.10:80 check
  server web2 10.30.2.11:80 check
C
cat > "$W/nginx-lb.conf" <<C
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1; pid $W/lb.pid; error_log $W/lb.err; daemon off;
events { worker_connections 8192; }
stream { upstream b { server 10.30.2.10:80; server 10.30.2.11:80; } server { listen 10.30.1.120:80; proxy_pass b; } }
C
for dp in kernel proxy; do cat > "$W/lbd-$dp.toml" <<C
domain = "bench.test"
[[subnet]]
network = "10.30.1.0/24"
[[subnet]]
network = "10.30.2.0/24"
[host.web1]
ip = "10.30.2.10"
[host.web2]
ip = "10.30.2.11"
[service.www]
vip = "10.30.1.120"
port = 80
backends = ["web1", "web2"]
scheduler = "rr"
dataplane = "$dp"
check = { type = "tcp", interval = "2s", timeout = "1s" }
C
done
bench() { # name url
  local r1 r2
  r1=$(ip netns exec lbc wrk -t1 -c"$C" -d"${S}s" "$2" 2>&1 | awk '/Requests\/sec/{print $2}')
  r2=$(ip netns exec lbc wrk -t1 -c"$C" -d"${S}s" -H 'Connection: close' "$2" 2>&1 | awk '/Requests\/sec/{print $2}')
  printf '%-12s keepalive_rps=%-10s newconn_rps=%s\n' "$1" "$r1" "$r2"
}
row_lbd() { # dp
  fresh novip   # lbd places the VIP itself
  ip netns exec lb "$LBD" -c "$W/lbd-$1.toml" --runtime-dir "$W" >"$W/lbd-$1.log" 2>&1 & P=$!
  for _ in $(seq 100); do grep -q "lbd ready" "$W/lbd-$1.log" && break; sleep 0.1; done
  grep -q "lbd ready" "$W/lbd-$1.log" || { echo "lbd ($1) did not start:"; cat "$W/lbd-$1.log"; kill $P; exit 1; }
  bench "lbd-$1" http://10.30.1.120/
  kill $P; wait $P 2>/dev/null
}
row_nftables() {
  fresh; ip netns exec lb nft -f - <<N
table ip lbbench {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr 10.30.1.120 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 10.30.2.10, 1 : 10.30.2.11 }
  }
}
N
  bench nftables http://10.30.1.120/; ip netns exec lb nft delete table ip lbbench
}
row_haproxy() {
  fresh; ip netns exec lb haproxy -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & P=$!; sleep 1
  bench haproxy http://10.30.1.120/; kill $P; wait $P 2>/dev/null
}
# Each lbd row runs right after the peer it is compared with (and, with ABBA=1, the peer again
# after it), so load drifting during the run (a shared machine) biases the ratios less.
fresh; bench direct http://10.30.2.10/
fresh; ip netns exec lb nginx -c "$W/nginx-lb.conf" & P=$!; sleep 1
bench nginx http://10.30.1.120/; kill $P; wait $P 2>/dev/null
row_nftables; row_lbd kernel; [ "${ABBA:-0}" = 1 ] && { row_lbd kernel; row_nftables; }
row_haproxy; row_lbd proxy; [ "${ABBA:-0}" = 1 ] && { row_lbd proxy; row_haproxy; }
