# SPDX-License-Identifier: Apache-2.0
# Network case (issue 3): wrk against nginx-light on loopback, keep-alive and `Connection: close`,
# interleaved pairs without and with the agent (bpf_stats off), medians of requests/s; then the
# ns per run of every program over each workload in a separate pass (bpf_stats on). wrk's own
# sockets are traced too: every request is seen on both ends.
NET_SECONDS=${NET_SECONDS:-4}
NET_CONNS=${NET_CONNS:-32}

# requests/s of one wrk run; $2 an extra header ("" for none).
net_wrk_rps() {
	local url=$1 hdr=$2 args=(-t1 -c"$NET_CONNS" -d"${NET_SECONDS}s")
	[ -n "$hdr" ] && args+=(-H "$hdr")
	wrk "${args[@]}" "$url" | awk '/^Requests\/sec:/{print $2}'
}

# One variant: prints "median_base median_with median_ratio | raw pairs".
net_variant() {
	local url=$1 hdr=$2 base=() with=() ratio=() i a b
	for i in $(seq 1 "$PAIRS"); do
		# Alternate which side runs first so that drift (other tenants) hits both alike.
		if [ $((i % 2)) -eq 1 ]; then
			a=$(net_wrk_rps "$url" "$hdr"); agent_start; b=$(net_wrk_rps "$url" "$hdr"); agent_stop
		else
			agent_start; b=$(net_wrk_rps "$url" "$hdr"); agent_stop; a=$(net_wrk_rps "$url" "$hdr")
		fi
		base+=("$a"); with+=("$b"); ratio+=("$(echo "scale=4; $b / $a" | bc -l)")
		echo "  ${hdr:-keep-alive} pair $i: without $a req/s, with $b req/s" >&2
	done
	echo "$(printf '%s\n' "${base[@]}" | median) $(printf '%s\n' "${with[@]}" | median) $(printf '%s\n' "${ratio[@]}" | median) | without ${base[*]}; with ${with[*]}"
}

bench_net() {
	# The network component's own cost (issue 3): the agent without its cgroup_skb programs (http,
	# stream), which the HTTP and PostgreSQL cases measure.
	local BENCH_AGENT_ARGS="--force-off cgroup_skb"
	bench_nginx_start
	local url="http://127.0.0.1:$BENCH_NGINX_PORT/" ka cl ka_costs cl_costs ka_reqs cl_reqs
	sysctl -qw kernel.bpf_stats_enabled=0
	ka=$(net_variant "$url" "")
	cl=$(net_variant "$url" "Connection: close")
	# The requests of each costed run, to turn ns per run into ns per request.
	local reqs; reqs=$(mktemp /tmp/aurum-bench-net-reqs.XXXXXX)
	ka_costs=$(program_costs bash -c "wrk -t1 -c$NET_CONNS -d${NET_SECONDS}s $url | awk '/requests in/{print \$1}' >$reqs")
	ka_reqs=$(cat "$reqs")
	cl_costs=$(program_costs bash -c "wrk -t1 -c$NET_CONNS -d${NET_SECONDS}s -H 'Connection: close' $url | awk '/requests in/{print \$1}' >$reqs")
	cl_reqs=$(cat "$reqs")
	rm -f "$reqs"
	bench_nginx_stop
	# ns of BPF time per request, per component: "component ns" lines.
	per_request() { printf '%s\n' "$1" | awk -v r="$2" 'NF==4 && r>0 {t[$1]+=$3*$4} END {for (c in t) printf "%s %.0f\n", c, t[c]/r}' | sort; }
	local row
	row() { # name "mb mw ratio | raw"
		set -- "$1" $2
		echo "| $1 | $2 | $3 | $4 |"
	}
	{
		echo "## Network (issue 3)"
		echo
		echo "\`wrk -t1 -c$NET_CONNS -d${NET_SECONDS}s\` against nginx-light (1 worker, 3-byte body) on loopback, $PAIRS interleaved pairs without and with the agent run with \`--force-off cgroup_skb\` (its socket-level components; the HTTP and PostgreSQL sections measure the cgroup_skb ones), kernel.bpf_stats_enabled=0. Medians of requests/s, $(date -u +%F), kernel $(uname -r). Goal: keep-alive >= 0.97, connection per request >= 0.95."
		echo
		echo "| variant | without agent (req/s) | with agent (req/s) | median of pair ratios |"
		echo "|---|---|---|---|"
		row "keep-alive" "${ka%% |*}"
		row "Connection: close" "${cl%% |*}"
		echo
		echo "Components running in the agent: $(printf '%s\n' "$ka_costs" | awk 'NF==4{print $1}' | sort -u | paste -sd, -)."
		echo
		echo "Per-run cost of every program over each workload (a separate run with kernel.bpf_stats_enabled=1, which adds ~20-30 ns a run itself):"
		echo
		echo "| workload | component | program | runs | ns/run |"
		echo "|---|---|---|---|---|"
		printf '%s\n' "$ka_costs" | awk 'NF==4{printf "| keep-alive | %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		printf '%s\n' "$cl_costs" | awk 'NF==4{printf "| close | %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		echo
		echo "BPF time per request (runs x ns/run over the run's requests, both ends of each request traced): keep-alive ($ka_reqs requests): $(per_request "$ka_costs" "$ka_reqs" | awk '{printf "%s%s %s ns", (NR > 1 ? ", " : ""), $1, $2}'); Connection: close ($cl_reqs requests): $(per_request "$cl_costs" "$cl_reqs" | awk '{printf "%s%s %s ns", (NR > 1 ? ", " : ""), $1, $2}')."
		echo
		echo "Raw pairs (req/s): keep-alive: ${ka#*| }. Connection: close: ${cl#*| }."
	} | bench_section net
}
