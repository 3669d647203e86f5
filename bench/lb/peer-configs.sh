# Sourced by run.sh and syscalls.sh (the caller sets W, its work folder).

# The addresses of the family a run measures, FAMILY=4 (the default) or 6: VIP, WEB1, WEB2,
# NFT (the nftables family) and VIP_ADD (`ip addr add` arguments for the VIP, without duplicate
# address detection for IPv6). `urlhost ADDR` writes an address as a URL's host (an IPv6 one in
# brackets).
lb_family() {
  case "${FAMILY:-4}" in
    4) VIP=10.30.1.120; WEB1=10.30.2.10; WEB2=10.30.2.11; NFT=ip; VIP_ADD="$VIP/32" ;;
    6) VIP=fd30:1::120; WEB1=fd30:2::10; WEB2=fd30:2::11; NFT=ip6; VIP_ADD="$VIP/128 nodad" ;;
    *) echo "FAMILY must be 4 or 6, not ${FAMILY}"; exit 1 ;;
  esac
}
urlhost() { case $1 in *:*) echo "[$1]" ;; *) echo "$1" ;; esac; }

# FAMILY=6: IPv6 beside the IPv4 of ../shared/bench/lb/netns.sh's namespaces, in the same
# shape (fd30:1::/64 between client and balancer, fd30:2::/64 on the backends' bridge, the
# backends routing back through the balancer), no duplicate address detection. FAMILY=4: nothing.
netns6_up() {
  [ "${FAMILY:-4}" = 6 ] || return 0
  ip netns exec lb sysctl -qw net.ipv6.conf.all.forwarding=1
  ip -n lbc addr add fd30:1::2/64 dev lbc0 nodad
  ip -n lb addr add fd30:1::1/64 dev lb0 nodad
  ip -n lb addr add fd30:2::1/64 dev br0 nodad
  ip -n web1 addr add fd30:2::10/64 dev web1-0 nodad
  ip -n web2 addr add fd30:2::11/64 dev web2-0 nodad
  ip -n web1 -6 route add default via fd30:2::1
  ip -n web2 -6 route add default via fd30:2::1
  ip -n lbc -6 route add fd30:2::/64 via fd30:1::1
}

# The backends' nginx configs (web1, web2: "hello from webN", keep-alive without limit) and
# HAProxy's (tcp mode, round robin, checks), in "$W", for the addresses of $FAMILY (the
# backends listen on IPv6 too with FAMILY=6). usage: peer_configs [sendfile on|off]
peer_configs() {
  local n listen6=
  lb_family
  [ "${FAMILY:-4}" = 6 ] && listen6=" listen [::]:80 reuseport;"
  for n in web1 web2; do
    mkdir -p "$W/$n"; echo "hello from $n" > "$W/$n/index.html"
    cat > "$W/$n.conf" <<C
worker_processes 1; pid $W/$n.pid; error_log $W/$n.err; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; sendfile ${1:-off}; server { listen 80 reuseport;$listen6 root $W/$n; } }
C
  done
  cat > "$W/haproxy.cfg" <<C
global
  maxconn 8000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend f
  bind $(urlhost $VIP):80
  default_backend b
backend b
  balance roundrobin
  server web1 $(urlhost $WEB1):80 check
  server web2 $(urlhost $WEB2):80 check
C
}

# lbd's host file for the same network: service www on the VIP of $FAMILY over web1 and web2
# (with FAMILY=6 the hosts have their IPv6 addresses too, and the service an IPv6 VIP).
# usage: lbd_config kernel|proxy [byte-counters: true|false] > file
lbd_config() {
  local v6=
  lb_family
  [ "${FAMILY:-4}" = 6 ] && v6=1
  cat <<C
domain = "bench.test"
[[subnet]]
network = "10.30.1.0/24"
[[subnet]]
network = "10.30.2.0/24"
${v6:+[[subnet]]
network = \"fd30:1::/64\"
[[subnet]]
network = \"fd30:2::/64\"}
[host.web1]
ip = "10.30.2.10"
${v6:+ipv6 = \"$WEB1\"}
[host.web2]
ip = "10.30.2.11"
${v6:+ipv6 = \"$WEB2\"}
[service.www]
vip = "$VIP"
port = 80
backends = ["web1", "web2"]
scheduler = "rr"
dataplane = "$1"
byte-counters = ${2:-false}
check = { type = "tcp", interval = "2s", timeout = "1s" }
C
}
