# SPDX-License-Identifier: Apache-2.0
# Floor case (issues 4 and 5): what the hooks cost before any parsing, on two workloads with both
# ends on loopback (every segment passes two cgroup_skb runs): the HTTP worst case (wrk keep-alive
# against nginx-light) and pgbench select-only (extended protocol). Server and load generator run
# on one CPU (FLOOR_CPU, default 0): unpinned, the scheduler's placement of clients and servers on
# the two CPUs moves pgbench's tps by 15% from one run to the next (softirq time changes with it),
# more than what is measured here; pinned, runs repeat within ~2%, and every cost of either end
# slows the one saturated CPU. Rounds of six variants in rotating order, each timed on its own,
# kernel.bpf_stats_enabled=0:
#   none      no agent
#   empty     two cgroup_skb programs that return at once (scripts/bench/empty_skb.bpf.c) on the
#             cgroup v2 root, attached with bpftool: the hook's own cost
#   agent-skb the agent with --force-off cgroup_skb (net and sched, no http or stream)
#   both      agent-skb plus the empty programs: the whole agent with a parser that does nothing
#   lookup    the whole agent with AURUM_BENCH_STOP_AFTER_LOOKUP=1: http's and stream's programs
#             stop every segment right after its connection's state lookup (no parsing)
#   agent     the whole agent
# Medians of each variant's ratio to `none` in the same round.
#   FLOOR_WORKLOADS="http pgsql" (default both)
FLOOR_SECONDS=${FLOOR_SECONDS:-4}
FLOOR_PG_SECONDS=${FLOOR_PG_SECONDS:-6}
FLOOR_CPU=${FLOOR_CPU:-0}
FLOOR_WORKLOADS=${FLOOR_WORKLOADS:-http pgsql}
. scripts/bench/pgsql.sh # pg_start, pg_tps, pg_agent_start, pg_stop

floor_rps() { taskset -c "$FLOOR_CPU" wrk -t1 -c32 -d"${FLOOR_SECONDS}s" "$1" | awk '/^Requests\/sec:/{print $2}'; }

# The empty programs, loaded once and pinned; floor_attach on|off.
floor_load() {
	local inc
	# mountinfo: the filesystem type is the field after " - " (optional fields come before it).
	FLOOR_CG=$(awk '{for (i = 7; i < NF; i++) if ($i == "-") break} $(i + 1) == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
	[ -n "$FLOOR_CG" ] || { echo "floor: no cgroup v2 mount" >&2; return 1; }
	FLOOR_FS=$(awk '{for (i = 7; i < NF; i++) if ($i == "-") break} $(i + 1) == "bpf" {print $5; exit}' /proc/self/mountinfo)
	if [ -z "$FLOOR_FS" ]; then
		mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
		echo "floor: mounted bpffs on /sys/fs/bpf (it was not mounted)" >&2
		FLOOR_FS=/sys/fs/bpf
	fi
	FLOOR_PIN=$FLOOR_FS/aurum-bench-floor-$$ # bpffs names take no dots
	FLOOR_OBJ=$(mktemp /tmp/aurum-floor.XXXXXX.o)
	inc=/usr/include/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
	clang -O2 -g -target bpf -I"$inc" -c scripts/bench/empty_skb.bpf.c -o "$FLOOR_OBJ"
	bpftool prog loadall "$FLOOR_OBJ" "$FLOOR_PIN"
}
floor_attach() {
	local d
	for d in ingress egress; do
		if [ "$1" = on ]; then
			bpftool cgroup attach "$FLOOR_CG" "$d" pinned "$FLOOR_PIN/empty_$d" multi
		else
			bpftool cgroup detach "$FLOOR_CG" "$d" pinned "$FLOOR_PIN/empty_$d" multi 2>/dev/null || true
		fi
	done
}
floor_unload() {
	floor_attach off
	rm -rf "$FLOOR_PIN" "$FLOOR_OBJ"
}
floor_cleanup() {
	floor_unload
	[ -z "${FLOOR_NGINX:-}" ] || bench_nginx_stop
	[ -z "${PG_DIR:-}" ] || pg_stop
}

# One timed run of workload $1: req/s (http) or tps (pgsql).
floor_measure() {
	case $1 in
	http) floor_rps "http://127.0.0.1:$BENCH_NGINX_PORT/" ;;
	pgsql) PG_SECONDS=$FLOOR_PG_SECONDS PG_CPUS=$FLOOR_CPU pg_tps -S -M extended ;;
	esac
}
# The whole agent, ready for workload $1 (for pgsql: once it has marked the postmaster's port).
floor_agent_start() {
	if [ "$1" = pgsql ]; then pg_agent_start; else agent_start; fi
}

# One variant ($2) of workload $1.
floor_run() {
	local w=$1 r
	case $2 in
	none) r=$(floor_measure "$w") ;;
	empty) floor_attach on; r=$(floor_measure "$w"); floor_attach off ;;
	agent-skb) agent_start --force-off cgroup_skb; r=$(floor_measure "$w"); agent_stop ;;
	both) agent_start --force-off cgroup_skb; floor_attach on; r=$(floor_measure "$w"); floor_attach off; agent_stop ;;
	lookup) AURUM_BENCH_STOP_AFTER_LOOKUP=1 floor_agent_start "$w"; r=$(floor_measure "$w"); agent_stop ;;
	agent) floor_agent_start "$w"; r=$(floor_measure "$w"); agent_stop ;;
	esac
	echo "$r"
}

# One workload's rounds: prints its table rows, then a line "RAW <raw>".
floor_workload() {
	local w=$1 i j v variants=(none empty agent-skb both lookup agent) order raw="" rows=""
	declare -A res
	for i in $(seq 1 "$PAIRS"); do
		# Rotate the order so that drift (other tenants) hits every variant alike.
		order=()
		for j in "${!variants[@]}"; do order+=("${variants[$(((i + j) % ${#variants[@]}))]}"); done
		for v in "${order[@]}"; do res[$v,$i]=$(floor_run "$w" "$v"); done
		echo "  floor $w round $i: $(for v in "${variants[@]}"; do printf '%s %s  ' "$v" "${res[$v,$i]}"; done)" >&2
	done
	for v in "${variants[@]}"; do
		local vals=() ratios=()
		for i in $(seq 1 "$PAIRS"); do
			vals+=("${res[$v,$i]}")
			ratios+=("$(echo "scale=4; ${res[$v,$i]} / ${res[none,$i]}" | bc -l)")
		done
		rows+="| $w | $v | $(printf '%s\n' "${vals[@]}" | median) | $(printf '%s\n' "${ratios[@]}" | median) | $(printf '%s\n' "${ratios[@]}" | sort -g | tr '\n' ' ')|"$'\n'
		raw+="$v: ${vals[*]}. "
	done
	printf '%s' "$rows"
	echo "RAW $w: $raw"
}

bench_floor() {
	local w out rows="" raw=""
	floor_load
	trap floor_cleanup EXIT # the empty programs must not stay attached if a run fails
	for w in $FLOOR_WORKLOADS; do
		case $w in
		http)
			bench_nginx_start
			FLOOR_NGINX=1
			local p
			for p in "$BENCH_NGINX_PID" $(pgrep -P "$BENCH_NGINX_PID"); do taskset -a -p -c "$FLOOR_CPU" "$p" >/dev/null; done
			;;
		pgsql) PG_CPUS=$FLOOR_CPU pg_start ;;
		*) echo "floor: no workload $w (http, pgsql)" >&2; return 2 ;;
		esac
		out=$(floor_workload "$w")
		rows+=$(printf '%s\n' "$out" | grep -v '^RAW ')$'\n'
		raw+="$(printf '%s\n' "$out" | sed -n 's/^RAW //p') "
		case $w in
		http) bench_nginx_stop; FLOOR_NGINX= ;;
		pgsql) pg_stop; PG_DIR= ;;
		esac
	done
	floor_unload
	trap - EXIT
	{
		echo "## Floor: what the hooks cost before any parsing (issues 4 and 5)"
		echo
		echo "$(date -u +%F), kernel $(uname -r). Two workloads with both ends on loopback, so every segment runs an egress and an ingress hook: the HTTP worst case (\`wrk -t1 -c32 -d${FLOOR_SECONDS}s\` keep-alive against nginx-light, 1 worker, 3-byte body; req/s) and pgbench select-only (\`-S -M extended\`, scale 4, $PG_CLIENTS clients, 2 threads, ${FLOOR_PG_SECONDS} s; tps). Server and load generator pinned to CPU $FLOOR_CPU (unpinned, the placement of clients and servers on the two CPUs moves pgbench's tps by ~15% from run to run; pinned, runs repeat within ~2%, and every cost at either end slows the one saturated CPU). $PAIRS rounds of six variants in rotating order, kernel.bpf_stats_enabled=0: no agent; two cgroup_skb programs that return at once (\`scripts/bench/empty_skb.bpf.c\`, attached to the cgroup v2 root with bpftool); the agent with \`--force-off cgroup_skb\` (net and sched only); that agent plus the empty programs (the whole agent with a parser that does nothing); the whole agent with \`AURUM_BENCH_STOP_AFTER_LOOKUP=1\` (http's and stream's programs stop every segment right after its connection's state lookup: the hooks, the dispatch and the lookup, no parsing); the whole agent. Each variant's ratio to no agent in the same round; medians."
		echo
		echo "| workload | variant | req/s or tps (median) | ratio to no agent (median) | ratios, sorted |"
		echo "|---|---|---|---|---|"
		printf '%s' "$rows"
		echo
		echo "Raw (by round): $raw"
	} | bench_section floor
}
