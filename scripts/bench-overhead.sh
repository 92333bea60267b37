#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end overhead of the agent, A/B with and without it, interleaved pairs, medians; and the
# cost per run of each BPF program (kernel BPF stats, in a separate pass: the stats themselves
# cost ~20-30 ns a run, so throughput is always timed with them off).
#
#   scripts/bench-overhead.sh [--pairs N] [CASE ...]      CASE: sched net http pgsql floor (default: all)
#
# Each case lives in scripts/bench/<case>.sh and defines bench_<case>; it writes its section of
# docs/benchmarks.md between "<!-- <case>:begin -->" and "<!-- <case>:end -->" with bench_section.
# A benchmark, not a test: this machine is noisy, so nothing here passes or fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
aurum_as_root "$@"

PAIRS=5
CASES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--pairs) PAIRS=$2; shift 2 ;;
	*) CASES+=("$1"); shift ;;
	esac
done
if [ ${#CASES[@]} -eq 0 ]; then
	for f in scripts/bench/*.sh; do CASES+=("$(basename "$f" .sh)"); done
fi

aurum_apt "${AURUM_BUILD_DEPS[@]}" linux-perf libbpf-tools wrk nginx-light curl
aurum_build >/dev/null
AGENT=${AURUM_BUILD_DIR:-build}/aurum
BENCH_PORT=${BENCH_PORT:-19891}
DOC=docs/benchmarks.md
export PAIRS AGENT BENCH_PORT DOC

# --- helpers shared by the cases -------------------------------------------------------------

# Starts the agent (extra args allowed) and waits for /healthz.
agent_start() {
	# BENCH_AGENT_ARGS: extra arguments a case gives every agent it starts (costs pass included).
	"$AGENT" --web.listen-address 127.0.0.1:$BENCH_PORT --log.level warn ${BENCH_AGENT_ARGS:-} "$@" >/tmp/aurum-bench-agent.log 2>&1 &
	AGENT_PID=$!
	for _ in $(seq 1 600); do
		# Our own agent must be the one answering: a leftover on the port would fool /healthz.
		kill -0 "$AGENT_PID" 2>/dev/null || break
		curl -fs -o /dev/null http://127.0.0.1:$BENCH_PORT/healthz && return 0
		sleep 0.1
	done
	echo "agent did not start:" >&2; cat /tmp/aurum-bench-agent.log >&2; return 1
}
agent_stop() {
	kill -TERM "$AGENT_PID" 2>/dev/null || true
	wait "$AGENT_PID" 2>/dev/null || true
}
# Agent CPU seconds so far (utime+stime) and RSS in MiB.
agent_cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14+$15)/hz}' /proc/$AGENT_PID/stat; }
agent_rss_mib() { awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/$AGENT_PID/status; }

median() { sort -g | awk '{a[NR]=$1} END{if(NR==0){print "nan"} else if(NR%2){print a[(NR+1)/2]} else {printf "%.6g\n",(a[NR/2]+a[NR/2+1])/2}}'; }

# ns per run of every aurum program over a workload: "component program runs ns_per_run" lines.
# Usage: program_costs <workload command...>   (starts its own agent with --bpf-stats)
# With --force-off tail_call: by default http's cgroup_skb programs tail-call stream's, and the
# kernel counts a tail-called program's runs and time in its caller's; attached on their own,
# each shows its own cost (the timed runs use the default).
program_costs() {
	agent_start --bpf-stats --force-off tail_call
	local before after
	before=$(curl -fs http://127.0.0.1:$BENCH_PORT/metrics | grep -E '^aurum_bpf_program_(runs|run_seconds)_total')
	"$@" >/dev/null 2>&1 || true
	after=$(curl -fs http://127.0.0.1:$BENCH_PORT/metrics | grep -E '^aurum_bpf_program_(runs|run_seconds)_total')
	agent_stop
	/usr/bin/python3 - "$before" "$after" <<'PY'
import re, sys
def parse(t):
    d = {}
    for line in t.splitlines():
        m = re.match(r'(\w+)\{component="([^"]+)",program="([^"]+)"\} (\S+)', line)
        if m: d[(m.group(1), m.group(2), m.group(3))] = float(m.group(4))
    return d
b, a = parse(sys.argv[1]), parse(sys.argv[2])
progs = sorted({(c, p) for (_, c, p) in a})
for c, p in progs:
    runs = a.get(('aurum_bpf_program_runs_total', c, p), 0) - b.get(('aurum_bpf_program_runs_total', c, p), 0)
    secs = a.get(('aurum_bpf_program_run_seconds_total', c, p), 0) - b.get(('aurum_bpf_program_run_seconds_total', c, p), 0)
    if runs > 0:
        print(f"{c} {p} {int(runs)} {secs * 1e9 / runs:.0f}")
PY
}

# nginx-light with one worker answering 200 "ok" on a free loopback port (the network and HTTP
# cases' server): sets BENCH_NGINX_PORT.
bench_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_nginx_start() {
	BENCH_NGINX_DIR=$(mktemp -d /tmp/aurum-bench-nginx.XXXXXX)
	BENCH_NGINX_PORT=$(bench_free_port)
	local d=$BENCH_NGINX_DIR
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000000;
	client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d; uwsgi_temp_path $d; scgi_temp_path $d;
	server { listen 127.0.0.1:$BENCH_NGINX_PORT; location / { return 200 "ok\n"; } }
}
EOF
	nginx -c "$d/nginx.conf" -p "$d" &
	BENCH_NGINX_PID=$!
	for _ in $(seq 1 50); do
		curl -fs -o /dev/null "http://127.0.0.1:$BENCH_NGINX_PORT/" && return 0
		sleep 0.1
	done
	echo "nginx did not start:" >&2; cat "$d/error.log" >&2; return 1
}

bench_nginx_stop() {
	kill "$BENCH_NGINX_PID" 2>/dev/null || true
	wait "$BENCH_NGINX_PID" 2>/dev/null || true
	rm -rf "$BENCH_NGINX_DIR"
}

# Replaces the section of docs/benchmarks.md named $1 with standard input.
bench_section() {
	local name=$1 body
	body=$(cat)
	[ -f "$DOC" ] || printf '# Benchmarks\n\nWritten by `scripts/bench-overhead.sh`; figures from the 2-vCPU development VM (noisy: interleaved A/B pairs, medians).\n' >"$DOC"
	/usr/bin/python3 - "$DOC" "$name" "$body" <<'PY'
import sys
path, name, body = sys.argv[1:4]
text = open(path).read()
begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
block = f"{begin}\n{body}\n{end}"
if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
}

export -f agent_start agent_stop agent_cpu_seconds agent_rss_mib median program_costs bench_section bench_free_port bench_nginx_start bench_nginx_stop

sysctl -qw kernel.bpf_stats_enabled=0
for c in "${CASES[@]}"; do
	f=scripts/bench/$c.sh
	[ -f "$f" ] || { echo "no case $c ($f)" >&2; exit 2; }
	echo "== $c ($PAIRS pairs)" >&2
	. "$f"
	"bench_$c"
done
echo "wrote $DOC" >&2
