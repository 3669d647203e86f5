#!/usr/bin/env bash
# Does the status page cost anything while nobody looks? (issue 18) The same release binary run
# with `metrics` off and on (the page, its 10 s history sampler and the Prometheus endpoint), the
# two alternated (off, on, on, off, ...) so a change in the machine's load hits both alike.
# usage: bench/pagecost.sh dns|dhcp [rounds] [seconds]
#   dns:  dnsd alone on the shared DNS workload (../shared/bench/dns/mkzone.py's queries, the
#         1,000-host file of bench/dns/mkhosts.py): max qps (dnsperf -c 8 -q 500 -T 2) and the
#         server's CPU per answered query at RATE (default 40,000) qps, as peers.sh measures them.
#   dhcp: dhcpd alone through bench/dhcp/solo.sh (perfdhcp, RATE default 3,000/s, every lease
#         fsynced before its ACK); METRICS empty turns the endpoint off there.
# Prints one line per run and the medians per mode. Run it under the benchmark lock:
#   flock /tmp/bench.lock bench/pagecost.sh dns 3 10
set -eu
H=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$H/.." && pwd)
WHAT=${1:?usage: pagecost.sh dns|dhcp [rounds] [seconds]}
ROUNDS=${2:-3}
S=${3:-10}
T=${CARGO_TARGET_DIR:-$ROOT/target}
D=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$D"' EXIT

cpu_ns() { # exact scheduler runtime of every thread of $1, in ns
  cat /proc/"$1"/task/*/sched 2>/dev/null | awk '/se.sum_exec_runtime/{s+=$3} END{printf "%.0f\n", s*1e6}'
}

dns_run() { # mode(off|on) -> "max_qps cpu_us"
  local mode=$1 port=5324 bin=${DNSD_BIN:-$T/release/dnsd} q c0 c1 n
  if [ "$mode" = on ]; then METRICS=127.0.0.1:9324 python3 "$H/dns/mkhosts.py" 1000 "$D/hosts.toml" $port
  else METRICS= python3 "$H/dns/mkhosts.py" 1000 "$D/hosts.toml" $port; fi
  "$bin" --user root --config "$D/hosts.toml" --state-dir "$D" --runtime-dir "$D" --log warn >"$D/dnsd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do dig +short +time=1 +tries=1 -p $port @127.0.0.1 host1.it-ishin.com A 2>/dev/null | grep -qx 10.0.0.1 && break; sleep 0.1; done
  # (this runs in a command substitution: stop the server before giving up)
  [ "$(dig +short -p $port @127.0.0.1 host1.it-ishin.com A)" = 10.0.0.1 ] || { kill $pid; echo "dnsd gave no answer: $(cat "$D/dnsd.log")" >&2; exit 1; }
  if [ "$mode" = on ]; then curl -sf http://127.0.0.1:9324/ >/dev/null || { kill $pid; echo "metrics on but no page" >&2; exit 1; }; fi
  q=$(dnsperf -s 127.0.0.1 -p $port -d "$D/queries.txt" -l "$S" -c 8 -q 500 -T 2 2>&1 | awk '/Queries per second/{print $4}')
  c0=$(cpu_ns $pid)
  n=$(dnsperf -s 127.0.0.1 -p $port -d "$D/queries.txt" -l "$S" -c 8 -Q "${RATE:-40000}" 2>&1 | awk '/Queries completed/{print $3}')
  c1=$(cpu_ns $pid)
  kill $pid; wait $pid 2>/dev/null || true; pid=
  awk -v q="$q" -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN{ printf "%.0f %.2f\n", q, (b-a)/1000/n }'
}

dhcp_run() { # mode -> "acks_per_s cpu_us drop%"
  local line
  if [ "$1" = on ]; then line=$(METRICS=127.0.0.1:9167 bash "$H/dhcp/solo.sh" dhcpd "${RATE:-3000}" "$S")
  else line=$(METRICS= bash "$H/dhcp/solo.sh" dhcpd "${RATE:-3000}" "$S"); fi
  echo "$line" | tr ' ' '\n' | awk -F= '/^acks_per_s=/{a=$2} /^cpu_us_per_exchange=/{c=$2} /^discover_drop=/{d=$2} END{print a, c, d}'
}

case "$WHAT" in
dns) python3 "$ROOT/../shared/bench/dns/mkzone.py" 1000 "$D" >/dev/null; echo "# mode max_qps cpu_us_per_q@${RATE:-40000}" ;;
dhcp) echo "# mode acks_per_s cpu_us_per_exchange discover_drop (offered ${RATE:-3000}/s)" ;;
*) echo "usage: pagecost.sh dns|dhcp [rounds] [seconds]" >&2; exit 2 ;;
esac
for r in $(seq "$ROUNDS"); do
  # off/on in odd rounds, on/off in even ones
  if [ $((r % 2)) = 1 ]; then order="off on"; else order="on off"; fi
  for m in $order; do
    row=$("${WHAT}_run" $m) && [ -n "$row" ] || { echo "the $m run failed" >&2; exit 1; }
    echo "$m $row" | tee -a "$D/rows"
  done
done
for m in off on; do
  printf 'median %s (each column on its own): ' $m
  for col in 2 3 4; do awk -v m=$m -v c=$col '$1==m{print $c}' "$D/rows" | sort -n | awk '{v[NR]=$1} END{printf "%s ", v[int((NR+1)/2)]}'; done
  echo
done
