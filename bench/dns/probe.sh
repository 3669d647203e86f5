#!/usr/bin/env bash
# Where a DNS server's time goes under the bench's dnsperf load, per answered query, from the
# kernel's own counters (not wall-clock qps alone, which moves with the machine's load):
# per thread, CPU time (scheduler runtime) and voluntary / involuntary context switches; for the
# whole process tree (NSD forks), syscalls, recvmmsg/sendmmsg/epoll_wait calls (batch fill =
# queries / recvmmsg), context switches (wake-ups) and migrations (perf tracepoints and
# software events: no hardware counters needed).
#   W=DIR probe.sh NAME PORT SECONDS CMD...    (DIR holds queries.txt, e.g. from mkzone.py)
#   RATE=40000 W=DIR probe.sh ...               (fixed rate instead of dnsperf -c 8 -q 500 -T 2)
# Needs root, dnsperf, dig and perf (linux-perf). Starts CMD, waits for it to answer on PORT,
# measures, stops it (by its PID).
set -u
name=$1 port=$2 S=$3
shift 3
W=${W:?W=DIR with queries.txt}
"$@" >"$W/$name.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 host1.it-ishin.com A >/dev/null 2>&1 && break
  sleep 0.2
done
tree() { # the server's PID and its descendants'
  local all=$pid fr=$pid nx
  while [ -n "$fr" ]; do
    nx=$(for f in $fr; do pgrep -P "$f"; done)
    all="$all $nx"
    fr=$nx
  done
  echo $all
}
snap() { # tid comm runtime_ms voluntary involuntary, per thread of the tree
  for p in $(tree); do
    for t in /proc/"$p"/task/*; do
      awk -v t="${t##*/}" -v c="$(tr ' ' _ <"$t/comm")" '/se.sum_exec_runtime/{r=$3}
        /nr_voluntary_switches/{v=$3} /nr_involuntary_switches/{iv=$3} END{print t, c, r, v, iv}' "$t/sched"
    done
  done
}
snap >"$W/s0.$name"
if [ -n "${RATE:-}" ]; then load="-c 8 -Q $RATE"; else load="-c 8 -q 500 -T 2"; fi
perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendmmsg \
  -e syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait \
  -e context-switches,cpu-migrations -p "$(tree | tr ' ' ,)" -o "$W/pstat.$name" -- sleep "$S" &
pst=$!
dnsperf -s 127.0.0.1 -p "$port" -d "$W/queries.txt" -l "$S" $load >"$W/perf.$name" 2>&1
wait $pst
snap >"$W/s1.$name"
q=$(awk '/Queries completed/{print $3}' "$W/perf.$name")
qps=$(awk '/Queries per second/{printf "%.0f", $4}' "$W/perf.$name")
echo "$name ${RATE:+rate=$RATE }qps=$qps completed=$q load=$(cut -d' ' -f1 /proc/loadavg)"
join <(sort "$W/s0.$name") <(sort "$W/s1.$name") | awk -v q="$q" '{dr=$7-$3; dv=$8-$4; di=$9-$5
  if (dr>1) {printf "  tid %s %-14s cpu_ms=%6.0f us/q=%.2f vol/kq=%.1f invol/kq=%.1f\n", $1,$2,dr,dr*1000/q,dv*1000/q,di*1000/q
    R+=dr; V+=dv; I+=di}}
  END{printf "  total cpu_ms=%.0f us/q=%.2f vol/kq=%.1f invol/kq=%.1f\n", R, R*1000/q, V*1000/q, I*1000/q}'
awk -F, -v q="$q" '/^[0-9]/{printf "  %-34s %10d  per kq %8.1f\n", $3, $1, $1*1000/q}' "$W/pstat.$name"
kill "$pid"
wait "$pid" 2>/dev/null
