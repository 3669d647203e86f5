# Sourced by run.sh and syscalls.sh (the caller sets W, its work folder).

# The backends' nginx configs (web1, web2: "hello from webN", keep-alive without limit) and
# HAProxy's (tcp mode, round robin, checks), in "$W". usage: peer_configs [sendfile on|off]
peer_configs() {
  local n
  for n in web1 web2; do
    mkdir -p "$W/$n"; echo "hello from $n" > "$W/$n/index.html"
    cat > "$W/$n.conf" <<C
worker_processes 1; pid $W/$n.pid; error_log $W/$n.err; daemon off;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; sendfile ${1:-off}; server { listen 80 reuseport; root $W/$n; } }
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
  bind 10.30.1.120:80
  default_backend b
backend b
  balance roundrobin
  server web1 10.30.2.10:80 check
  server web2 10.30.2.11:80 check
C
}

# lbd's host file for the same network: service www on the VIP over web1 and web2.
# usage: lbd_config kernel|proxy [byte-counters: true|false] > file
lbd_config() {
  cat <<C
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
dataplane = "$1"
byte-counters = ${2:-false}
check = { type = "tcp", interval = "2s", timeout = "1s" }
C
}
