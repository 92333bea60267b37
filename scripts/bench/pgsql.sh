# SPDX-License-Identifier: Apache-2.0
# PostgreSQL case (issue 5): pgbench against a cluster of our own over TCP on loopback (the agent
# frames every segment of it in the kernel, on both ends), interleaved pairs without and with the
# agent (bpf_stats off), medians of tps and of the agent's own CPU during the with-agent runs; then
# the ns per run of every program over one run, and of the stream programs again with
# `--force-off bpf_loop` (the copy-to-userspace fallback of kernels before 5.17).
PG_SECONDS=${PG_SECONDS:-8}
PG_CLIENTS=${PG_CLIENTS:-4}
# The server and pgbench on one CPU by default (PG_CPUS= runs them unpinned): unpinned, where the
# scheduler places 4 clients and 4 backends on the two CPUs moves tps by ~15% from one run to the
# next (it changes how much softirq time loopback delivery takes), more than the agent costs.
PG_CPUS=${PG_CPUS-0}

pg_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_start() {
	aurum_apt postgresql postgresql-contrib
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	PG_DIR=$(mktemp -d /tmp/aurum-bench-pg.XXXXXX)
	PG_PORT=$(pg_free_port)
	chown postgres: "$PG_DIR"
	runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >/dev/null
	# Started under taskset when PG_CPUS is set: the postmaster and every backend stay there.
	${PG_CPUS:+taskset -c "$PG_CPUS"} runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
		-o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off" start >/dev/null
	"$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -i -s 4 -q postgres >/dev/null 2>&1
}

pg_stop() {
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
	rm -rf "$PG_DIR"
}

# The agent marks the postmaster's port at its first poll; measure only after that.
pg_agent_start() {
	agent_start
	for _ in $(seq 1 100); do
		curl -fs http://127.0.0.1:$BENCH_PORT/metrics | grep -q "^aurum_stream_ports{port=\"$PG_PORT\"" && return 0
		sleep 0.1
	done
	echo "the agent did not mark port $PG_PORT" >&2
	return 1
}

# tps of one pgbench run (excluding connection time); $@: extra pgbench options.
pg_tps() {
	${PG_CPUS:+taskset -c "$PG_CPUS"} "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$PG_CLIENTS" -j 2 -T "$PG_SECONDS" "$@" postgres 2>/dev/null |
		awk '/^tps = /{print $3; exit}'
}

# One run with the agent: sets b (tps) and cpu (the agent's CPU seconds per second of the run, in
# percent of one core).
pg_with_agent() {
	local c0 c1 t0 t1
	pg_agent_start
	c0=$(agent_cpu_seconds); t0=$(date +%s.%N)
	b=$(pg_tps "$@")
	c1=$(agent_cpu_seconds); t1=$(date +%s.%N)
	agent_stop
	cpu=$(echo "scale=1; 100 * ($c1 - $c0) / ($t1 - $t0)" | bc -l)
}

# One variant: prints "median_base median_with median_ratio median_agent_cpu% | raw pairs".
pg_variant() {
	local base=() with=() ratio=() cpus=() i a b cpu
	for i in $(seq 1 "$PAIRS"); do
		if [ $((i % 2)) -eq 1 ]; then
			a=$(pg_tps "$@"); pg_with_agent "$@"
		else
			pg_with_agent "$@"; a=$(pg_tps "$@")
		fi
		base+=("$a"); with+=("$b"); cpus+=("$cpu"); ratio+=("$(echo "scale=4; $b / $a" | bc -l)")
		echo "  pgbench $* pair $i: without $a tps, with $b tps (agent CPU $cpu%)" >&2
	done
	echo "$(printf '%s\n' "${base[@]}" | median) $(printf '%s\n' "${with[@]}" | median) $(printf '%s\n' "${ratio[@]}" | median) $(printf '%s\n' "${cpus[@]}" | median) | without ${base[*]}; with ${with[*]}; agent CPU % ${cpus[*]}"
}

# The stream programs' cost with PostgreSQL copied to userspace (the fallback without bpf_loop):
# the agent under a wrapper that adds --force-off bpf_loop.
pg_fallback_costs() {
	local wrapper=$PG_DIR/aurum-fallback
	printf '#!/bin/sh\nexec %q --force-off bpf_loop "$@"\n' "$(readlink -f "$AGENT")" >"$wrapper"
	chmod +x "$wrapper"
	AGENT=$wrapper program_costs "$@" | awk '$1 == "stream"'
}

bench_pgsql() {
	pg_start
	local sel tpcb costs fallback
	sysctl -qw kernel.bpf_stats_enabled=0
	sel=$(pg_variant -S -M extended)
	tpcb=$(pg_variant)
	costs=$(program_costs ${PG_CPUS:+taskset -c "$PG_CPUS"} "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$PG_CLIENTS" -j 2 -T "$PG_SECONDS" -S -M extended postgres)
	fallback=$(pg_fallback_costs ${PG_CPUS:+taskset -c "$PG_CPUS"} "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$PG_CLIENTS" -j 2 -T "$PG_SECONDS" -S -M extended postgres)
	local version
	version=$("$PG_BIN/postgres" --version)
	pg_stop
	row() { # name "mb mw ratio cpu | raw"
		set -- "$1" $2
		echo "| $1 | $2 | $3 | $4 | $5 |"
	}
	{
		echo "## PostgreSQL (issue 5)"
		echo
		echo "pgbench (scale 4, $PG_CLIENTS clients, 2 threads, ${PG_SECONDS} s, TCP on loopback) against $version with fsync off, $(if [ -n "$PG_CPUS" ]; then echo "server and pgbench pinned to CPU $PG_CPUS (unpinned, their placement on the two CPUs moves tps by ~15% from run to run)"; else echo "unpinned"; fi), $PAIRS interleaved pairs without and with the whole agent, kernel.bpf_stats_enabled=0; the agent finds the port from the postmaster and frames both ends of every connection in the kernel. Medians of tps (excluding connection time) and of the agent's own CPU (utime+stime over the with-agent run, % of one core), $(date -u +%F), kernel $(uname -r). Goal: >= 0.97."
		echo
		echo "| workload | without agent (tps) | with agent (tps) | median of pair ratios | agent CPU (% of a core) |"
		echo "|---|---|---|---|---|"
		row "select-only, extended protocol (\`-S -M extended\`)" "${sel%% |*}"
		row "TPC-B-like (default script, simple protocol)" "${tpcb%% |*}"
		echo
		echo "Per-run cost of every program over a select-only extended-protocol run (a separate run with kernel.bpf_stats_enabled=1, which adds ~20-30 ns a run itself, and \`--force-off tail_call\`: in the timed runs http's cgroup_skb programs tail-call stream's for the PostgreSQL port, and the kernel would count stream's time in http's):"
		echo
		echo "| component | program | runs | ns/run |"
		echo "|---|---|---|---|"
		printf '%s\n' "$costs" | awk 'NF==4{printf "| %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		echo
		echo "The same run with \`--force-off bpf_loop\` (every PostgreSQL segment copied to userspace, as on kernels before 5.17):"
		echo
		echo "| component | program | runs | ns/run |"
		echo "|---|---|---|---|"
		printf '%s\n' "$fallback" | awk 'NF==4{printf "| %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		echo
		echo "Raw pairs (tps): select-only: ${sel#*| }. TPC-B-like: ${tpcb#*| }."
	} | bench_section pgsql
}
