# SPDX-License-Identifier: Apache-2.0
# Scheduler case: a context-switch-heavy workload (perf bench sched pipe: two tasks ping-pong
# over a pipe, so every op is two wakeups and two switches) with and without the agent, and
# libbpf-tools' runqlat on the same workload in the same run for comparison.
SCHED_LOOPS=${SCHED_LOOPS:-200000}

sched_usecs_per_op() { perf bench sched pipe -l "$SCHED_LOOPS" 2>/dev/null | awk '/usecs\/op/{print $1}'; }

# ns per run of runqlat's programs over the same workload (kernel.bpf_stats_enabled=1).
runqlat_costs() {
	sysctl -qw kernel.bpf_stats_enabled=1
	/usr/sbin/runqlat 3600 1 >/dev/null 2>&1 &
	local rq=$!
	sleep 2
	local before after
	before=$(bpftool prog show -j 2>/dev/null)
	sched_usecs_per_op >/dev/null
	after=$(bpftool prog show -j 2>/dev/null)
	kill -INT $rq 2>/dev/null; wait $rq 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled=0
	/usr/bin/python3 - "$before" "$after" <<'PY'
import json, sys
b = {p["id"]: p for p in json.loads(sys.argv[1] or "[]")}
for p in json.loads(sys.argv[2] or "[]"):
    if p.get("name") not in ("sched_wakeup", "sched_wakeup_new", "sched_switch", "handle_sched_wakeup", "handle_sched_wakeup_new", "handle_sched_switch"):
        continue
    o = b.get(p["id"], {})
    runs = p.get("run_cnt", 0) - o.get("run_cnt", 0)
    ns = p.get("run_time_ns", 0) - o.get("run_time_ns", 0)
    if runs > 0:
        print(f'runqlat {p["name"]} {runs} {ns / runs:.0f}')
PY
}

bench_sched() {
	local base=() with=() rq=() agent_cpu=() i
	for i in $(seq 1 "$PAIRS"); do
		base+=("$(sched_usecs_per_op)")
		agent_start
		local c0; c0=$(agent_cpu_seconds)
		with+=("$(sched_usecs_per_op)")
		agent_cpu+=("$(echo "$(agent_cpu_seconds) - $c0" | bc -l)")
		agent_stop
		/usr/sbin/runqlat 3600 1 >/dev/null 2>&1 & local rqpid=$!
		sleep 1.5
		rq+=("$(sched_usecs_per_op)")
		kill -INT $rqpid 2>/dev/null; wait $rqpid 2>/dev/null || true
		echo "  pair $i: baseline ${base[-1]} us/op, aurum ${with[-1]} us/op, runqlat ${rq[-1]} us/op" >&2
	done
	local mb mw mr
	mb=$(printf '%s\n' "${base[@]}" | median)
	mw=$(printf '%s\n' "${with[@]}" | median)
	mr=$(printf '%s\n' "${rq[@]}" | median)
	local costs rqcosts
	costs=$(program_costs perf bench sched pipe -l "$SCHED_LOOPS")
	rqcosts=$(runqlat_costs)
	{
		echo "## Scheduler (issue 2)"
		echo
		echo "\`perf bench sched pipe -l $SCHED_LOOPS\` (every op: two wakeups, two context switches), $PAIRS interleaved runs each of: no agent, aurum, libbpf-tools runqlat. Medians, $(date -u +%F), kernel $(uname -r)."
		echo
		echo "| | usecs/op (median) | vs baseline |"
		echo "|---|---|---|"
		echo "| baseline | $mb | 1.00 |"
		echo "| aurum (CPU time + run-queue histogram per process) | $mw | $(echo "scale=3; $mw / $mb" | bc -l) |"
		echo "| runqlat (run-queue histogram, global) | $mr | $(echo "scale=3; $mr / $mb" | bc -l) |"
		echo
		echo "Per-run cost of each program over the same workload (kernel.bpf_stats_enabled=1, which adds ~20-30 ns itself):"
		echo
		echo "| tool | program | runs | ns/run |"
		echo "|---|---|---|---|"
		printf '%s\n' "$costs" "$rqcosts" | awk 'NF==4{printf "| %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		echo
		echo "Raw pairs (us/op): baseline ${base[*]}; aurum ${with[*]}; runqlat ${rq[*]}."
	} | bench_section sched
}
