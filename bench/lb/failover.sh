#!/usr/bin/env bash
# Failover time, lbd pair vs keepalived pair (vrrp_version 3), at 1 s and 0.1 s adverts.
# Two balancers (master priority 150, backup 100) and a client on one bridge. The master
# "dies" (its daemon killed with -9 and its link cut, as when the machine fails); we measure
# (1) the time until the backup holds the VIP and (2) the time until a client hammering
# http://VIP:8080/ (busybox httpd on both balancers, curl every ~10 ms, 100 ms timeout) sees
# its first success again (VIP move + gratuitous ARP).
# Needs root and: keepalived busybox curl iproute2 nftables.
# usage: bench/lb/failover.sh [rounds]          (LBD=path/to/lbd to pick the binary)
set -u
R=${1:-3}
HERE=$(cd "$(dirname "$0")" && pwd); ROOT=$(cd "$HERE/../.." && pwd)
LBD=${LBD:-${CARGO_TARGET_DIR:-$ROOT/target}/release/lbd}
[ -x "$LBD" ] || { echo "no lbd binary at $LBD"; exit 1; }
VIP=10.31.0.120; P=lbfo
W=$(mktemp -d)
ms() { echo $(( $(date +%s%N) / 1000000 )); }
down() {
  for p in ${PIDS:-}; do kill -9 "$p" 2>/dev/null; { wait "$p"; } 2>/dev/null; done; PIDS=
  for n in sw m b c; do ip netns del $P-$n 2>/dev/null; done; true
}
trap 'down; rm -rf "$W"' EXIT
up() {
  down
  for n in sw m b c; do ip netns add $P-$n; ip -n $P-$n link set lo up; done
  ip -n $P-sw link add br0 type bridge; ip -n $P-sw link set br0 up
  for h in m:2 b:3 c:50; do n=${h%%:*}; o=${h##*:}
    ip -n $P-sw link add p-$n type veth peer name eth0 netns $P-$n
    ip -n $P-sw link set p-$n master br0; ip -n $P-sw link set p-$n up
    ip -n $P-$n addr add 10.31.0.$o/24 dev eth0; ip -n $P-$n link set eth0 up
  done
  for n in m b; do
    mkdir -p "$W/www-$n"; echo "$n" > "$W/www-$n/index.html"
    ip netns exec $P-$n busybox httpd -f -p 8080 -h "$W/www-$n" & PIDS="$PIDS $!"
  done
  sleep 0.5
}
lbd_conf() { # name priority interval_ms
  cat > "$W/$1.toml" <<C
domain = "bench.test"
[[subnet]]
network = "10.31.0.0/24"
[host.web]
ip = "10.31.0.10"
[service.www]
vip = "$VIP"
port = 80
backends = ["web"]
check = { type = "none" }
[lb]
vrrp = { vrid = 61, priority = $2, interval = "$3ms" }
C
}
ka_conf() { # name priority interval_s
  cat > "$W/$1.conf" <<C
global_defs {
  router_id $1
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority $2
  advert_int $3
  virtual_ipaddress {
    $VIP/24
  }
}
C
}
start() { # impl node priority interval_ms
  local n=$2
  if [ "$1" = lbd ]; then
    lbd_conf "$n" "$3" "$4"
    ip netns exec $P-$n "$LBD" --user root -c "$W/$n.toml" --runtime-dir "$W/run-$n" >"$W/$n.log" 2>&1 &
  else
    ka_conf "$n" "$3" "$(awk "BEGIN{print $4/1000}")"
    ip netns exec $P-$n keepalived --vrrp -n -l -D -f "$W/$n.conf" -p "$W/$n.pid" -r "$W/$n.vpid" >"$W/$n.log" 2>&1 &
  fi
  PIDS="$PIDS $!"; eval "PID_$n=$!"
}
holds() { ip -n $P-$1 -4 addr show dev eth0 | grep -q "inet $VIP/"; }
hammer() { # writes the ms start time of each request that succeeded
  local t
  while :; do
    t=$(ms)
    if ip netns exec $P-c curl -s -o /dev/null --max-time 0.1 "http://$VIP:8080/"; then echo "$t" >> "$W/ok"; fi
    sleep 0.01
  done
}
round() { # impl interval_ms
  up
  start "$1" m 150 "$2"
  for _ in $(seq 500); do holds m && break; sleep 0.02; done
  holds m || { echo "$1: master never took the VIP"; cat "$W/m.log"; return 1; }
  start "$1" b 100 "$2"
  sleep $(awk "BEGIN{print 5*$2/1000 + 0.5}")
  holds b && { echo "$1: backup holds the VIP while the master runs"; return 1; }
  : > "$W/ok"; hammer & H=$!
  sleep 0.3
  if [ "$1" = keepalived ]; then kill -9 "$(cat "$W/m.vpid")" "$(cat "$W/m.pid")" 2>/dev/null; fi
  kill -9 "$PID_m"; ip -n $P-m link set eth0 down
  # The master is gone from here on; only requests started later count.
  local t0; t0=$(ms)
  local t1=""
  for _ in $(seq 1500); do holds b && { t1=$(ms); break; }; sleep 0.005; done
  local t2=""
  for _ in $(seq 1000); do
    t2=$(awk -v t0="$t0" '$1 > t0 {print $1; exit}' "$W/ok"); [ -n "$t2" ] && break; sleep 0.01
  done
  kill $H 2>/dev/null; { wait $H; } 2>/dev/null
  if [ "$1" = keepalived ]; then kill -9 "$(cat "$W/b.vpid")" "$(cat "$W/b.pid")" 2>/dev/null; fi
  printf '%-10s adverts=%4sms  backup_holds_vip=%5sms  client_first_success=%5sms\n' \
    "$1" "$2" "$(( ${t1:-t0} - t0 ))" "$([ -n "$t2" ] && echo $(( t2 - t0 )) || echo never)"
}
for iv in 1000 100; do
  for r in $(seq "$R"); do
    round lbd "$iv"
    round keepalived "$iv"
  done
done
