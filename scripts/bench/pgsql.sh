# SPDX-License-Identifier: Apache-2.0
# PostgreSQL case (issue 5): pgbench against a cluster of our own over TCP on loopback (the agent
# copies and parses every segment of it, on both ends), interleaved pairs without and with the
# agent (bpf_stats off), medians of tps; then the ns per run of every program over one run.
PG_SECONDS=${PG_SECONDS:-8}
PG_CLIENTS=${PG_CLIENTS:-4}

pg_free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pg_start() {
	aurum_apt postgresql postgresql-contrib
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
	PG_DIR=$(mktemp -d /tmp/aurum-bench-pg.XXXXXX)
	PG_PORT=$(pg_free_port)
	chown postgres: "$PG_DIR"
	runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >/dev/null
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
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
	"$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$PG_CLIENTS" -j 2 -T "$PG_SECONDS" "$@" postgres 2>/dev/null |
		awk '/^tps = /{print $3; exit}'
}

# One variant: prints "median_base median_with median_ratio | raw pairs".
pg_variant() {
	local base=() with=() ratio=() i a b
	for i in $(seq 1 "$PAIRS"); do
		if [ $((i % 2)) -eq 1 ]; then
			a=$(pg_tps "$@"); pg_agent_start; b=$(pg_tps "$@"); agent_stop
		else
			pg_agent_start; b=$(pg_tps "$@"); agent_stop; a=$(pg_tps "$@")
		fi
		base+=("$a"); with+=("$b"); ratio+=("$(echo "scale=4; $b / $a" | bc -l)")
		echo "  pgbench $* pair $i: without $a tps, with $b tps" >&2
	done
	echo "$(printf '%s\n' "${base[@]}" | median) $(printf '%s\n' "${with[@]}" | median) $(printf '%s\n' "${ratio[@]}" | median) | without ${base[*]}; with ${with[*]}"
}

bench_pgsql() {
	pg_start
	local sel tpcb costs
	sysctl -qw kernel.bpf_stats_enabled=0
	sel=$(pg_variant -S -M extended)
	tpcb=$(pg_variant)
	costs=$(program_costs "$PG_BIN/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -c "$PG_CLIENTS" -j 2 -T "$PG_SECONDS" -S postgres)
	local version
	version=$("$PG_BIN/postgres" --version)
	pg_stop
	row() { # name "mb mw ratio | raw"
		set -- "$1" $2
		echo "| $1 | $2 | $3 | $4 |"
	}
	{
		echo "## PostgreSQL (issue 5)"
		echo
		echo "pgbench (scale 4, $PG_CLIENTS clients, 2 threads, ${PG_SECONDS} s, TCP on loopback) against $version with fsync off, $PAIRS interleaved pairs without and with the whole agent, kernel.bpf_stats_enabled=0; the agent finds the port from the postmaster and parses both ends of every connection. Medians of tps (excluding connection time), $(date -u +%F), kernel $(uname -r). Goal: >= 0.97."
		echo
		echo "| workload | without agent (tps) | with agent (tps) | median of pair ratios |"
		echo "|---|---|---|---|"
		row "select-only, extended protocol (\`-S -M extended\`)" "${sel%% |*}"
		row "TPC-B-like (default script, simple protocol)" "${tpcb%% |*}"
		echo
		echo "Per-run cost of every program over a select-only run (a separate run with kernel.bpf_stats_enabled=1, which adds ~20-30 ns a run itself):"
		echo
		echo "| component | program | runs | ns/run |"
		echo "|---|---|---|---|"
		printf '%s\n' "$costs" | awk 'NF==4{printf "| %s | %s | %s | %s |\n",$1,$2,$3,$4}'
		echo
		echo "Raw pairs (tps): select-only: ${sel#*| }. TPC-B-like: ${tpcb#*| }."
	} | bench_section pgsql
}
