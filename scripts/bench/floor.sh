# SPDX-License-Identifier: Apache-2.0
# Floor case (issues 4 and 5): what the hooks cost before any parsing, on the HTTP worst case
# (wrk keep-alive against nginx-light on loopback, both ends traced). Rounds of five variants in
# rotating order, each timed on its own, kernel.bpf_stats_enabled=0:
#   none      no agent
#   empty     two cgroup_skb programs that return at once (scripts/bench/empty_skb.bpf.c) on the
#             cgroup v2 root, attached with bpftool: the hook's own cost
#   agent-skb the agent with --force-off cgroup_skb (net and sched, no http or stream)
#   both      agent-skb plus the empty programs: the whole agent with a parser that does nothing
#   agent     the whole agent
# Medians of each variant's ratio to `none` in the same round.
FLOOR_SECONDS=${FLOOR_SECONDS:-4}

floor_rps() { wrk -t1 -c32 -d"${FLOOR_SECONDS}s" "$1" | awk '/^Requests\/sec:/{print $2}'; }

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

# One variant's req/s.
floor_run() {
	local url=$1 r
	case $2 in
	none) r=$(floor_rps "$url") ;;
	empty) floor_attach on; r=$(floor_rps "$url"); floor_attach off ;;
	agent-skb) agent_start --force-off cgroup_skb; r=$(floor_rps "$url"); agent_stop ;;
	both) agent_start --force-off cgroup_skb; floor_attach on; r=$(floor_rps "$url"); floor_attach off; agent_stop ;;
	agent) agent_start; r=$(floor_rps "$url"); agent_stop ;;
	esac
	echo "$r"
}

bench_floor() {
	local url i j v variants=(none empty agent-skb both agent) order raw="" rows=""
	declare -A res
	floor_load
	trap floor_unload EXIT # the empty programs must not stay attached if a run fails
	bench_nginx_start
	url="http://127.0.0.1:$BENCH_NGINX_PORT/"
	for i in $(seq 1 "$PAIRS"); do
		# Rotate the order so that drift (other tenants) hits every variant alike.
		order=()
		for j in 0 1 2 3 4; do order+=("${variants[$(((i + j) % 5))]}"); done
		for v in "${order[@]}"; do res[$v,$i]=$(floor_run "$url" "$v"); done
		echo "  floor round $i: $(for v in "${variants[@]}"; do printf '%s %s  ' "$v" "${res[$v,$i]}"; done)" >&2
	done
	bench_nginx_stop
	floor_unload
	trap - EXIT
	for v in "${variants[@]}"; do
		local vals=() ratios=()
		for i in $(seq 1 "$PAIRS"); do
			vals+=("${res[$v,$i]}")
			ratios+=("$(echo "scale=4; ${res[$v,$i]} / ${res[none,$i]}" | bc -l)")
		done
		rows+="| $v | $(printf '%s\n' "${vals[@]}" | median) | $(printf '%s\n' "${ratios[@]}" | median) | $(printf '%s\n' "${ratios[@]}" | sort -g | tr '\n' ' ')|"$'\n'
		raw+="$v: ${vals[*]}. "
	done
	{
		echo "## Floor: what the hooks cost before any parsing (issues 4 and 5)"
		echo
		echo "$(date -u +%F), kernel $(uname -r). The HTTP worst case (\`wrk -t1 -c32 -d${FLOOR_SECONDS}s\` keep-alive against nginx-light, 1 worker, 3-byte body, on loopback, both ends traced), $PAIRS rounds of five variants in rotating order, kernel.bpf_stats_enabled=0: no agent; two cgroup_skb programs that return at once (\`scripts/bench/empty_skb.bpf.c\`, attached to the cgroup v2 root with bpftool); the agent with \`--force-off cgroup_skb\` (net and sched only); that agent plus the empty programs (the whole agent with a parser that does nothing); the whole agent. Each variant's ratio to no agent in the same round; medians."
		echo
		echo "| variant | req/s (median) | ratio to no agent (median) | ratios, sorted |"
		echo "|---|---|---|---|"
		printf '%s' "$rows"
		echo
		echo "Raw (req/s, by round): $raw"
	} | bench_section floor
}
