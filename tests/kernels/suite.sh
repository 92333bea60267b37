#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The kernel-matrix suite. Runs as the guest's init script under QEMU, or natively on the host
# (scripts/kernel-matrix.sh sets KMX_AGENT and the ports then). POSIX sh: busybox ash in the
# guest, busybox sh on the host. Prints only facts, as "@@kmx <kind> <name> <text>" lines;
# tests/kernels/matrix.py judges them on the host.
#
#   @@kmx run  <step> <command>     a step starts
#   @@kmx out  <step> <line>        its stdout, line by line (err: its stderr)
#   @@kmx rc   <step> <code> <s>    its exit code and duration in seconds
#   @@kmx fact <key>=<value>        what the workload did (the ground truth)
#   @@kmx metric <line>             the /metrics scrape after the workload
AGENT=${KMX_AGENT:-/kmx/aurum}
CONFIG=${KMX_CONFIG:-/kmx/aurum.yaml}
AGENT_PORT=${KMX_AGENT_PORT:-9890}
HTTP_PORT=${KMX_HTTP_PORT:-8080}
STEP_TIMEOUT=${KMX_STEP_TIMEOUT:-120}
BURN_SECONDS=${KMX_BURN_SECONDS:-3}
HTTP_OK=${KMX_HTTP_OK:-20}
HTTP_MISSING=${KMX_HTTP_MISSING:-5}
BLOB_BYTES=100000
BB=busybox
work=$(mktemp -d /tmp/kmx.XXXXXX)

say() { echo "@@kmx $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

# step NAME CMD...: run CMD with a time limit, prefix its output lines, report its exit code.
step() {
  name=$1; shift
  say run "$name" "$*"
  t0=$(now)
  $BB timeout "$STEP_TIMEOUT" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  sed "s/^/@@kmx out $name /" "$work/out"
  sed "s/^/@@kmx err $name /" "$work/err"
  say rc "$name" "$rc" "$(elapsed "$t0")"
  return $rc
}

# The features --force-off accepts: the names --probe prints, one per line, as
# "feature=<name> available=yes|no ..." (or "<name>: ..."). Forcing off what this kernel lacks
# anyway changes nothing, so only available ones are tried. KMX_FORCE overrides the list.
force_features() {
  if [ -n "${KMX_FORCE:-}" ]; then echo "$KMX_FORCE" | tr ',' ' '; return; fi
  if grep -q 'feature=' "$work/probe"; then
    grep -v 'available=no' "$work/probe" | sed -n 's/.*feature=\([A-Za-z0-9_.-]*\).*/\1/p'
  else
    sed -n 's/^[[:space:]]*\([a-z][a-z0-9_]*\)[[:space:]:=].*/\1/p' "$work/probe"
  fi
}

say begin kernel="$(uname -r)" id="${KMX_KERNEL_ID:-?}" uptime="$(now)" cpus="$($BB nproc)" \
  mem_kb="$(awk '/MemTotal/{print $2}' /proc/meminfo)"

# --- 1. feature probes, load+attach of every hook, then with features forced off --------------
step probe "$AGENT" --probe
cp "$work/out" "$work/probe"
step check "$AGENT" --check
cp "$work/out" "$work/check"
features=" $(force_features | sort -u | tr '\n' ' ') "
# The features a --check output's variants use: a variant names them ("tp_btf+task_storage").
chosen() {
  for v in $(sed -n 's/.*variant=\([^[:space:]]*\)[[:space:]].*/\1/p' "$1" | tr '+' '\n' | sort -u); do
    case $features in *" $v "*) echo "$v" ;; esac
  done
}
# Every --check loads every program again (seconds each under TCG): past the budget, say so and stop.
force_deadline=$(( $(now | cut -d. -f1) + ${KMX_FORCE_BUDGET:-60} ))
forced() {
  if [ "$(now | cut -d. -f1)" -ge "$force_deadline" ]; then
    say skip "check-off-$(echo "$1" | tr ',' '+')" "time budget of the forced runs spent"
    return 1
  fi
  step "check-off-$(echo "$1" | tr ',' '+')" "$AGENT" --check --force-off "$1"
  cp "$work/out" "$work/off-$1"
}
if grep -q 'hook=' "$work/check"; then
  # One switch at a time for each feature some hook's variant uses here; then the walk; then every
  # other switch the kernel has (what it lacks is off anyway), while the time budget lasts.
  used=$(chosen "$work/check" | tr '\n' ' ')
  others=
  for f in $features; do case " $used " in *" $f "*) ;; *) others="$others $f" ;; esac; done
  [ -n "${KMX_FORCE:-}" ] && { used=$(echo "$KMX_FORCE" | tr ',' ' '); others=; }
  for f in $used; do forced "$f" || break; done
  # One switch at a time reaches only the second variant of a fallback chain. Walk the chains
  # down: force off every feature chosen in the previous run, until nothing new is chosen.
  off=
  cp "$work/check" "$work/last"
  while :; do
    new=
    for v in $(chosen "$work/last"); do
      case ",$off," in *",$v,"*) ;; *) new="$new${new:+,}$v" ;; esac
    done
    [ -n "$new" ] || break
    off="$off${off:+,}$new"
    [ -f "$work/off-$off" ] || forced "$off" || break
    cp "$work/off-$off" "$work/last"
  done
  for f in $others; do forced "$f" || break; done
fi

# --- 2. smoke run: the agent, a CPU burner, HTTP over loopback, a scrape -----------------------
mkdir -p "$work/www"
$BB head -c "$BLOB_BYTES" /dev/zero > "$work/www/kmx-blob"
# httpd forks one child per connection; "httpd -f -p" names the service in aurum.yaml.
$BB httpd -f -p "127.0.0.1:$HTTP_PORT" -h "$work/www" &
httpd_pid=$!

say run smoke-agent "$AGENT" --config.file "$CONFIG" --web.listen-address "127.0.0.1:$AGENT_PORT"
t_agent=$(now)
"$AGENT" --config.file "$CONFIG" --web.listen-address "127.0.0.1:$AGENT_PORT" --log.level info \
  >"$work/agent.log" 2>&1 &
agent_pid=$!
healthy=0
i=0
while [ $i -lt "$STEP_TIMEOUT" ]; do
  if $BB wget -q -O /dev/null "http://127.0.0.1:$AGENT_PORT/healthz" 2>/dev/null; then healthy=1; break; fi
  kill -0 $agent_pid 2>/dev/null || break
  sleep 1
  i=$((i + 1))
done
say fact agent_healthy="$healthy" agent_ready_seconds="$(elapsed "$t_agent")"

# The burner spins in the shell itself (no fork per iteration), then blocks on a fifo so that it
# is still alive, with its CPU time fixed, when /metrics is scraped.
mkfifo "$work/burner.fifo"
# Its $0, kmx-burner, is what aurum.yaml matches.
$BB sh -c 'read start _ < /proc/uptime; start=${start%.*}; now=$start
  while [ $now -lt $((start + $1 + 1)) ]; do read now _ < /proc/uptime; now=${now%.*}; done
  : > "$2.burnt"; read _ < "$2"' kmx-burner "$BURN_SECONDS" "$work/burner.fifo" &
burner_pid=$!

ok=0; missing=0; i=0
while [ $i -lt "$HTTP_OK" ]; do
  $BB wget -q -O /dev/null "http://127.0.0.1:$HTTP_PORT/kmx-blob" 2>/dev/null && ok=$((ok + 1))
  i=$((i + 1))
done
i=0
while [ $i -lt "$HTTP_MISSING" ]; do
  $BB wget -q -O /dev/null "http://127.0.0.1:$HTTP_PORT/kmx-missing" 2>/dev/null || missing=$((missing + 1))
  i=$((i + 1))
done
while [ ! -e "$work/burner.fifo.burnt" ]; do sleep 1; done
# utime + stime in USER_HZ (100 on every Linux since 2.6 whatever CONFIG_HZ is)
burnt=$(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$burner_pid/stat")
say fact burn_cpu_seconds="$burnt" burn_wall_seconds="$BURN_SECONDS" http_200="$ok" \
  http_404="$missing" blob_bytes="$BLOB_BYTES" http_200_wanted="$HTTP_OK" http_404_wanted="$HTTP_MISSING"
sleep 3    # let the agent's userspace side catch up (process table, map reads)
if $BB wget -q -O "$work/metrics" "http://127.0.0.1:$AGENT_PORT/metrics" 2>/dev/null; then
  sed 's/^/@@kmx metric /' "$work/metrics"
  say fact scrape_ok=1 metric_lines="$(wc -l < "$work/metrics")"
else
  say fact scrape_ok=0
fi

echo > "$work/burner.fifo"
kill $httpd_pid 2>/dev/null
kill -TERM $agent_pid 2>/dev/null
wait $agent_pid
agent_rc=$?
wait $burner_pid $httpd_pid 2>/dev/null
tail -n 200 "$work/agent.log" | sed 's/^/@@kmx err smoke-agent /'
say rc smoke-agent "$agent_rc" "$(elapsed "$t_agent")"
rm -rf "$work"
say end uptime="$(now)"
