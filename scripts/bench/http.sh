# SPDX-License-Identifier: Apache-2.0
# HTTP case (issue 4). Two workloads, each as interleaved pairs without and with the agent
# (kernel.bpf_stats_enabled=0 while timing), medians:
#  1. worst case: wrk keep-alive against nginx-light (1 worker, 3-byte body) on loopback; wrk's own
#     sockets are traced too, so every request is parsed on both ends. A third run per pair with
#     `--force-off cgroup_skb` (the agent without its cgroup_skb programs: http, and the stream
#     component that shares the feature) separates their share from the rest of the agent.
#  2. realistic: a fixed rate (HTTP_RATE req/s) from an open-loop client to a Node.js handler that
#     answers 1 KiB after ~1 ms (scripts/bench/http-fixed-rate.js): added p50/p99 and the agent's
#     own CPU and RSS.
# Then the ns per run of each program over workload 1 (bpf_stats on, separate run).
# HTTP_COSTS_ONLY=1: only that last part, HTTP_COST_RUNS times (default 3), printed to stdout
# ("run component program runs ns_per_run"), docs/benchmarks.md untouched: for before/after
# comparisons of a change to bpf/http.bpf.c.
HTTP_SECONDS=${HTTP_SECONDS:-4}
HTTP_CONNS=${HTTP_CONNS:-32}
HTTP_RATE=${HTTP_RATE:-5000}
HTTP_FIXED_SECONDS=${HTTP_FIXED_SECONDS:-10}

http_wrk_rps() { wrk -t1 -c"$HTTP_CONNS" -d"${HTTP_SECONDS}s" "$1" | awk '/^Requests\/sec:/{print $2}'; }

# Workload 1: prints "base with nohttp ratio ratio_nohttp | raw".
http_worst_case() {
	local url=$1 base=() with=() noh=() r=() rn=() i a b c
	for i in $(seq 1 "$PAIRS"); do
		# Rotate the order so that drift (other tenants) hits every variant alike.
		case $((i % 3)) in
		1) a=$(http_wrk_rps "$url"); agent_start; b=$(http_wrk_rps "$url"); agent_stop
		   agent_start --force-off cgroup_skb; c=$(http_wrk_rps "$url"); agent_stop ;;
		2) agent_start; b=$(http_wrk_rps "$url"); agent_stop; a=$(http_wrk_rps "$url")
		   agent_start --force-off cgroup_skb; c=$(http_wrk_rps "$url"); agent_stop ;;
		0) agent_start --force-off cgroup_skb; c=$(http_wrk_rps "$url"); agent_stop
		   agent_start; b=$(http_wrk_rps "$url"); agent_stop; a=$(http_wrk_rps "$url") ;;
		esac
		base+=("$a"); with+=("$b"); noh+=("$c")
		r+=("$(echo "scale=4; $b / $a" | bc -l)"); rn+=("$(echo "scale=4; $b / $c" | bc -l)")
		echo "  worst case pair $i: without $a, with $b, with but no cgroup_skb $c req/s" >&2
	done
	echo "$(printf '%s\n' "${base[@]}" | median) $(printf '%s\n' "${with[@]}" | median) $(printf '%s\n' "${noh[@]}" | median) $(printf '%s\n' "${r[@]}" | median) $(printf '%s\n' "${rn[@]}" | median) | without ${base[*]}; with ${with[*]}; no cgroup_skb ${noh[*]}"
}

# One fixed-rate run: "p50 p99" in ms.
http_fixed_run() { node scripts/bench/http-fixed-rate.js client "$1" "$HTTP_RATE" "$HTTP_FIXED_SECONDS" | awk '{print $6, $8}'; }

# Workload 2: prints "p50_base p50_with p99_base p99_with cpu_pct rss_mib | raw".
http_realistic() {
	local port=$1 b50=() w50=() b99=() w99=() cpu=() rss=() i a b c0 c1
	for i in $(seq 1 "$PAIRS"); do
		if [ $((i % 2)) -eq 1 ]; then
			a=$(http_fixed_run "$port")
			agent_start; c0=$(agent_cpu_seconds); b=$(http_fixed_run "$port"); c1=$(agent_cpu_seconds); rss+=("$(agent_rss_mib)"); agent_stop
		else
			agent_start; c0=$(agent_cpu_seconds); b=$(http_fixed_run "$port"); c1=$(agent_cpu_seconds); rss+=("$(agent_rss_mib)"); agent_stop
			a=$(http_fixed_run "$port")
		fi
		set -- $a $b
		b50+=("$1"); b99+=("$2"); w50+=("$3"); w99+=("$4")
		cpu+=("$(echo "scale=3; 100 * ($c1 - $c0) / $HTTP_FIXED_SECONDS" | bc -l)")
		echo "  fixed rate pair $i: without p50 $1 p99 $2 ms; with p50 $3 p99 $4 ms; agent CPU ${cpu[-1]}% of a core" >&2
	done
	echo "$(printf '%s\n' "${b50[@]}" | median) $(printf '%s\n' "${w50[@]}" | median) $(printf '%s\n' "${b99[@]}" | median) $(printf '%s\n' "${w99[@]}" | median) $(printf '%s\n' "${cpu[@]}" | median) $(printf '%s\n' "${rss[@]}" | median) | p99 without ${b99[*]}; p99 with ${w99[*]}; agent CPU % ${cpu[*]}"
}

http_costs_only() {
	local url i
	bench_nginx_start
	url="http://127.0.0.1:$BENCH_NGINX_PORT/"
	for i in $(seq 1 "${HTTP_COST_RUNS:-3}"); do
		program_costs wrk -t1 -c"$HTTP_CONNS" -d"${HTTP_SECONDS}s" "$url" | awk -v i="$i" '$1=="http" {print i, $0}'
	done
	bench_nginx_stop
}

bench_http() {
	local url wc rl costs node_port node_pid reqs
	sysctl -qw kernel.bpf_stats_enabled=0
	if [ -n "${HTTP_COSTS_ONLY:-}" ]; then
		http_costs_only
		return
	fi
	bench_nginx_start
	url="http://127.0.0.1:$BENCH_NGINX_PORT/"
	wc=$(http_worst_case "$url")
	costs=$(program_costs wrk -t1 -c"$HTTP_CONNS" -d"${HTTP_SECONDS}s" "$url")
	reqs=$(wrk -t1 -c"$HTTP_CONNS" -d"${HTTP_SECONDS}s" "$url" | awk '/requests in/{print $1}')
	bench_nginx_stop

	node_port=$(bench_free_port)
	node scripts/bench/http-fixed-rate.js server "$node_port" >/dev/null &
	node_pid=$!
	for _ in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:$node_port/" && break; sleep 0.1; done
	rl=$(http_realistic "$node_port")
	kill "$node_pid" 2>/dev/null || true
	wait "$node_pid" 2>/dev/null || true

	set -- ${wc%% |*}
	local wb=$1 ww=$2 wn=$3 wr=$4 wrn=$5
	set -- ${rl%% |*}
	local p50b=$1 p50w=$2 p99b=$3 p99w=$4 cpu=$5 rss=$6
	{
		echo "## HTTP (issue 4)"
		echo
		echo "$(date -u +%F), kernel $(uname -r), $PAIRS interleaved pairs, kernel.bpf_stats_enabled=0 while timing, medians."
		echo
		echo "**Worst case**: \`wrk -t1 -c$HTTP_CONNS -d${HTTP_SECONDS}s\` keep-alive against nginx-light (1 worker, 3-byte body) on loopback; wrk's sockets are parsed too (both ends of every request). Goal >= 0.93 of baseline."
		echo
		echo "| without agent (req/s) | with agent (req/s) | with agent, cgroup_skb off (req/s) | with / without (median of pair ratios) | with / cgroup_skb off |"
		echo "|---|---|---|---|---|"
		echo "| $wb | $ww | $wn | $wr | $wrn |"
		echo
		echo "**Realistic**: $HTTP_RATE req/s for ${HTTP_FIXED_SECONDS}s (first second not measured) from an open-loop Node.js client to a Node.js handler answering 1 KiB after ~1 ms; latency from each request's scheduled start."
		echo
		echo "| p50 without (ms) | p50 with (ms) | p99 without (ms) | p99 with (ms) | agent CPU (% of one core) | agent RSS (MiB) |"
		echo "|---|---|---|---|---|---|"
		echo "| $p50b | $p50w | $p99b | $p99w | $cpu | $rss |"
		echo
		echo "Per-run cost over the worst-case workload (separate run, kernel.bpf_stats_enabled=1, which adds ~20-30 ns a run itself; $reqs requests in a comparable run):"
		echo
		echo "| component | program | runs | ns/run |"
		echo "|---|---|---|---|"
		printf '%s\n' "$costs" | awk 'NF==4 && $1=="http" {printf "| %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		echo
		echo "Raw: worst case ${wc#*| }. Realistic: ${rl#*| }."
	} | bench_section http
}
