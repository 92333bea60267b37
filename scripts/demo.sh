#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The plan's system on one host, watched by aurum, scraped by Prometheus, alerting to Alertmanager.
#
#   scripts/demo.sh up       install what is missing, start everything, print where to look
#   scripts/demo.sh down     stop everything; only data under the state folder stays behind
#   scripts/demo.sh status   what runs, on which port
#   scripts/demo.sh clean    down, then remove the state folder (all data)
#
# Runs as root (re-runs itself under sudo otherwise). Idempotent: `up` on a running testbed starts
# only what is not running. Ports: tests/testbed/ports.env. State, data and logs: one folder,
# $AURUM_TESTBED_STATE (default tests/testbed/.state, git-ignored).
# Environment: AURUM_BIN (agent binary, default build/aurum; built when missing unless
# AURUM_BUILD=0), AURUM_DEMO_NO_AGENT=1 (leave the agent out), AURUM_DEMO_NO_PROMETHEUS=1 (leave
# Prometheus and Alertmanager out), AURUM_DEMO_ALERTMANAGER_CONFIG=<file> (else
# deploy/alertmanager/alertmanager.yml when amtool accepts it, else a UI-only one),
# AURUM_DEMO_SKIP_INSTALL=1, MES_SLOW_MS=<ms> (MES worker slow mode from the start).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TB=$REPO/tests/testbed
# shellcheck source=../tests/testbed/ports.env
source "$TB/ports.env"

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
  echo "demo.sh: needs root (PostgreSQL and RabbitMQ run as their own users; the agent loads BPF)" >&2
  exit 1
fi

STATE=$("$TB/state-dir.sh")  # resolved again after installing (user postgres may be new)
AURUM_BIN=${AURUM_BIN:-$REPO/build/aurum}
PY=/usr/bin/python3
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
RMQ=/usr/lib/rabbitmq/bin
NODE_MODULES=$TB/node_modules

log() { printf '[demo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Every process started here carries this variable, so that `down` and the tests can find any
# leftover by its environment, whatever it forked into.
set_state() {
  STATE=$("$TB/state-dir.sh")
  MARK="AURUM_TESTBED_MARK=$STATE"
  RMQ_ENV=(HOME="$STATE/rabbitmq" RABBITMQ_NODENAME=aurum-testbed@localhost
    RABBITMQ_CONFIG_FILE="$STATE/rabbitmq/rabbitmq"
    RABBITMQ_ENABLED_PLUGINS_FILE="$STATE/rabbitmq/enabled_plugins"
    RABBITMQ_MNESIA_BASE="$STATE/rabbitmq/mnesia" RABBITMQ_LOG_BASE="$STATE/rabbitmq/log"
    RABBITMQ_PID_FILE="$STATE/rabbitmq/rabbit.pid" ERL_EPMD_PORT="$TESTBED_EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT="$TESTBED_RABBITMQ_DIST_PORT"
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
}
set_state

# ---------------------------------------------------------------------------------------------
# Dependencies

APT_PACKAGES=(postgresql rabbitmq-server python3-pika python3-psycopg2 python3-yaml prometheus
              prometheus-alertmanager curl iproute2 procps util-linux)

install_deps() {
  [[ ${AURUM_DEMO_SKIP_INSTALL:-0} == 1 ]] && return 0
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  command -v node >/dev/null || missing+=(nodejs)
  command -v npm >/dev/null || missing+=(npm)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    # Debian starts a package's service on install when it can; the testbed runs its own copies on
    # its own ports, so forbid that for the duration (and leave an existing policy alone).
    local policy=/usr/sbin/policy-rc.d created=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
    local apt=(apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}")
    local aptlog=$STATE/log/apt.log
    mkdir -p "$STATE/log"
    # A stale or missing package list is the usual cause of a failure: update once and retry.
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" >"$aptlog" 2>&1 \
      || { apt-get update -q -o DPkg::Lock::Timeout=300 >>"$aptlog" 2>&1 \
           && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >>"$aptlog" 2>&1; } \
      || { tail -20 "$aptlog" >&2; [[ $created == 1 ]] && rm -f "$policy"; \
           die "apt-get install failed (log: $aptlog)"; }
    [[ $created == 1 ]] && rm -f "$policy"
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  if [[ ! -f $NODE_MODULES/.installed || $TB/package-lock.json -nt $NODE_MODULES/.installed ]]; then
    log "npm ci in tests/testbed"
    (cd "$TB" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
    touch "$NODE_MODULES/.installed"
  fi
}

# ---------------------------------------------------------------------------------------------
# Process helpers

pidfile() { echo "$STATE/run/$1.pid"; }

alive() { # name -> 0 when the recorded process runs (zombies do not count)
  local f; f=$(pidfile "$1")
  [[ -f $f ]] || return 1
  local pid; pid=$(<"$f")
  [[ -n $pid && -d /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null \
    && has_mark "$pid"  # a recycled pid of a stale pid file is not ours
}

has_mark() { { tr '\0' '\n' <"/proc/$1/environ"; } 2>/dev/null | grep -qxF "$MARK"; }

spawn() { # name cmd... : start in its own session, log to log/<name>.log, remember the pid
  local name=$1; shift
  if alive "$name"; then log "$name already running (pid $(<"$(pidfile "$name")"))"; return 0; fi
  # setsid execs in place (the background child is not a group leader), so $! is the process.
  env "$MARK" setsid "$@" >>"$STATE/log/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

stop_pid() { # name: TERM the process's group, wait, then KILL
  local name=$1 f pid
  f=$(pidfile "$name")
  [[ -f $f ]] || return 0
  pid=$(<"$f")
  if alive "$name"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$name" || break; sleep 0.1; done
    if alive "$name"; then
      log "$name did not stop on TERM, killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

wait_for() { # what seconds command... : poll until the command succeeds
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "$what not ready after ${secs}s"; return 1; }
    sleep 0.2
  done
}

http_ok() { curl -fsS -m 2 -o /dev/null "$1" 2>/dev/null; }
port_open() { ss -Htln "sport = :$1" | grep -q .; }

marked_pids() { # pids of live processes that carry this testbed's mark
  local e pid
  for e in /proc/[0-9]*/environ; do
    pid=${e#/proc/}; pid=${pid%/environ}
    [[ $pid == "$$" ]] && continue
    if has_mark "$pid"; then
      grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null || echo "$pid"
    fi
  done
}

# ---------------------------------------------------------------------------------------------
# State folder: PostgreSQL runs as user postgres and must be able to reach its data directory.

prepare_state() {
  set_state
  mkdir -p "$STATE"/{run,log}
  runuser -u postgres -- test -x "$STATE" 2>/dev/null \
    || die "user postgres cannot reach $STATE (a parent directory is not searchable); set AURUM_TESTBED_STATE to a folder it can reach"
}

# ---------------------------------------------------------------------------------------------
# Components

pg_up() { # name port sqlfile
  local name=$1 port=$2 sql=$3 dir=$STATE/$1
  local data=$dir/data
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  if [[ ! -f $data/PG_VERSION ]]; then
    log "$name: initdb"
    runuser -u postgres -- "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 --no-sync >"$STATE/log/$name-initdb.log" 2>&1 || die "$name: initdb failed"
  fi
  if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "$name already running"
  else
    # cluster_name puts the component into every backend's process title; no Unix socket, TCP
    # on loopback only.
    env "$MARK" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -l "$dir/postgresql.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c cluster_name=$name -c max_connections=100" \
      start >"$STATE/log/$name-pg_ctl.log" 2>&1 || { tail "$dir/postgresql.log" >&2; die "$name: start failed"; }
  fi
  if [[ ! -f $dir/schema.applied ]]; then
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres -f "$sql" \
      >"$STATE/log/$name-schema.log" 2>&1 || die "$name: schema failed (log/$name-schema.log)"
    touch "$dir/schema.applied"
  fi
}

pg_down() { # name
  local data=$STATE/$1/data
  [[ -f $data/postmaster.pid ]] || return 0
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# RMQ_ENV (set_state): the environment of our RabbitMQ node and of the CLI tools that talk to it.
rmqctl() { env "${RMQ_ENV[@]}" "$RMQ/rabbitmqctl" "$@"; }

rabbitmq_start() {
  local dir=$STATE/rabbitmq
  mkdir -p "$dir/log" "$dir/mnesia"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$TESTBED_AMQP_PORT
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $TESTBED_RABBITMQ_PROMETHEUS_PORT
loopback_users = none
EOF
  echo '[rabbitmq_prometheus].' >"$dir/enabled_plugins"
  # Our own epmd on our own port, so that `down` can stop it without touching another node's.
  spawn epmd epmd -port "$TESTBED_EPMD_PORT" -address 127.0.0.1
  if alive rabbitmq; then log "rabbitmq already running"; return 0; fi
  # The environment goes through `env` so that the variables are in beam's environment too.
  env "$MARK" "${RMQ_ENV[@]}" setsid "$RMQ/rabbitmq-server" >>"$STATE/log/rabbitmq.log" 2>&1 </dev/null &
  echo $! >"$(pidfile rabbitmq)"
}

rabbitmq_wait() {
  local t0=$SECONDS
  if ! wait_for "rabbitmq" 120 rmqctl -q await_startup --timeout 5; then
    tail -20 "$STATE/log/rabbitmq.log" >&2; die "rabbitmq did not start"
  fi
  wait_for "rabbitmq_prometheus" 30 http_ok "http://127.0.0.1:$TESTBED_RABBITMQ_PROMETHEUS_PORT/metrics" || true
  log "rabbitmq ready after $((SECONDS - t0))s of waiting"
}

rabbitmq_down() {
  if alive rabbitmq; then
    # beam stops cleanly on SIGTERM (init:stop); rabbitmqctl stop costs ~7 s of CLI start-up.
    stop_pid rabbitmq
  fi
  rm -f "$(pidfile rabbitmq)"
  stop_pid epmd
}

apis_up() {
  local -a envs=(
    "SHOP_API_PORT=$TESTBED_SHOP_API_PORT" "CRM_API_PORT=$TESTBED_CRM_API_PORT"
    "MES_API_PORT=$TESTBED_MES_API_PORT"
    "SHOP_DB_DSN=host=127.0.0.1 port=$TESTBED_SHOP_DB_PORT dbname=shop user=shop"
    "CRM_DB_URL=postgresql://crm@127.0.0.1:$TESTBED_SHOP_DB_PORT/crm"
    "MES_DB_URL=postgresql://mes@127.0.0.1:$TESTBED_MES_DB_PORT/mes"
    "AMQP_URL=amqp://guest:guest@127.0.0.1:$TESTBED_AMQP_PORT/%2F"
    "S3_PORT=$TESTBED_S3_PORT" "S3_BUCKET=invoices" "S3_ACCESS_KEY=S3RVER" "S3_SECRET_KEY=S3RVER"
    "MES_SLOW_MS=${MES_SLOW_MS:-0}")
  spawn mes-api env "${envs[@]}" node "$TB/services/mes_api.js"
  spawn shop-api env "${envs[@]}" "$PY" "$TB/services/shop_api.py"
  spawn crm-api env "${envs[@]}" node "$TB/services/crm_api.js"
  wait_for shop-api 30 http_ok "http://127.0.0.1:$TESTBED_SHOP_API_PORT/healthz" || die "shop-api (log/shop-api.log)"
  wait_for crm-api 30 http_ok "http://127.0.0.1:$TESTBED_CRM_API_PORT/healthz" || die "crm-api (log/crm-api.log)"
  wait_for mes-api 30 http_ok "http://127.0.0.1:$TESTBED_MES_API_PORT/healthz" || die "mes-api (log/mes-api.log)"
}

s3_up() {
  mkdir -p "$STATE/s3"
  # s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 (Node >= 17) only offers
  # through its legacy provider: without it every listing past one page answers 500.
  local legacy=()
  (($(node -p 'process.versions.node.split(".")[0]') >= 17)) && legacy=(--openssl-legacy-provider)
  spawn s3-storage node "${legacy[@]}" "$NODE_MODULES/s3rver/bin/s3rver.js" -d "$STATE/s3" -a 127.0.0.1 \
    -p "$TESTBED_S3_PORT" --silent --configure-bucket invoices
}

agent_up() {
  [[ ${AURUM_DEMO_NO_AGENT:-0} == 1 ]] && { log "agent left out (AURUM_DEMO_NO_AGENT=1)"; return 0; }
  if [[ ! -x $AURUM_BIN && ${AURUM_BUILD:-1} == 1 ]]; then
    log "building the agent: cmake -S . -B build -G Ninja && ninja -C build -j2 aurum"
    if ! (cd "$REPO" && cmake -S . -B build -G Ninja >"$STATE/log/agent-build.log" 2>&1 \
          && ninja -C build -j2 aurum >>"$STATE/log/agent-build.log" 2>&1); then
      log "WARNING: the agent does not build yet (log/agent-build.log); carrying on without it"
      return 0
    fi
  fi
  if [[ ! -x $AURUM_BIN ]]; then log "WARNING: no agent at $AURUM_BIN; carrying on without it"; return 0; fi
  spawn aurum "$AURUM_BIN" --config.file "$TB/aurum.yaml" \
    --web.listen-address "127.0.0.1:$TESTBED_AURUM_PORT"
  local deadline=$((SECONDS + 30))
  until http_ok "http://127.0.0.1:$TESTBED_AURUM_PORT/healthz"; do
    if ! alive aurum || ((SECONDS > deadline)); then
      log "WARNING: aurum is not running or not healthy; carrying on without it. $STATE/log/aurum.log:"
      tail -5 "$STATE/log/aurum.log" >&2 || true
      return 0
    fi
    sleep 0.2
  done
}

rule_files() { # valid rule files of alerting/ (another part owns it: skip what promtool rejects)
  local f
  [[ -d $REPO/alerting ]] || return 0
  while IFS= read -r f; do
    grep -q '^groups:' "$f" || continue
    if promtool check rules "$f" >/dev/null 2>&1; then echo "$f"; else log "skipping invalid rule file $f"; fi
  done < <(find "$REPO/alerting" -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
}

prometheus_up() {
  [[ ${AURUM_DEMO_NO_PROMETHEUS:-0} == 1 ]] && return 0
  local dir=$STATE/prometheus f
  mkdir -p "$dir/data" "$STATE/alertmanager/data"
  {
    cat <<EOF
# Generated by scripts/demo.sh; edits are overwritten on the next \`up\`.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$TESTBED_ALERTMANAGER_PORT']
scrape_configs:
  - job_name: aurum
    static_configs:
      - targets: ['127.0.0.1:$TESTBED_AURUM_PORT']
  - job_name: rabbitmq
    static_configs:
      - targets: ['127.0.0.1:$TESTBED_RABBITMQ_PROMETHEUS_PORT']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$TESTBED_PROMETHEUS_PORT']
rule_files:
EOF
    while IFS= read -r f; do echo "  - '$f'"; done < <(rule_files)
  } >"$dir/prometheus.yml"
  grep -q "^  - '" "$dir/prometheus.yml" || sed -i 's/^rule_files:$/rule_files: []/' "$dir/prometheus.yml"
  local am=$REPO/deploy/alertmanager/alertmanager.yml
  if [[ -f ${AURUM_DEMO_ALERTMANAGER_CONFIG:-} ]]; then am=$AURUM_DEMO_ALERTMANAGER_CONFIG
  elif [[ ! -f $am ]] || ! amtool check-config "$am" >/dev/null 2>&1; then
    am=$STATE/alertmanager/alertmanager.yml
    cat >"$am" <<EOF
# Generated by scripts/demo.sh: alerts are shown in the web UI only.
route:
  receiver: ui
  group_by: [alertname, service_name]
  group_wait: 5s
  group_interval: 30s
receivers:
  - name: ui
EOF
  fi
  spawn alertmanager prometheus-alertmanager --config.file "$am" \
    --storage.path "$STATE/alertmanager/data" \
    --web.listen-address "127.0.0.1:$TESTBED_ALERTMANAGER_PORT" --cluster.listen-address=
  if alive prometheus; then  # pick up rule files added since
    curl -fsS -m 5 -X POST "http://127.0.0.1:$TESTBED_PROMETHEUS_PORT/-/reload" >/dev/null 2>&1 || true
  fi
  spawn prometheus prometheus --config.file "$dir/prometheus.yml" --storage.tsdb.path "$dir/data" \
    --web.listen-address "127.0.0.1:$TESTBED_PROMETHEUS_PORT" --web.enable-lifecycle \
    --storage.tsdb.retention.time 7d
  wait_for prometheus 30 http_ok "http://127.0.0.1:$TESTBED_PROMETHEUS_PORT/-/ready" || log "WARNING: prometheus not ready (log/prometheus.log)"
  wait_for alertmanager 30 http_ok "http://127.0.0.1:$TESTBED_ALERTMANAGER_PORT/-/ready" || log "WARNING: alertmanager not ready (log/alertmanager.log)"
}

# ---------------------------------------------------------------------------------------------

where_to_look() {
  local agent="running (log: $STATE/log/aurum.log)"
  alive aurum || agent="NOT RUNNING: see above and $STATE/log/aurum.log; the rest works without it"
  cat <<EOF

aurum testbed is up (state, data and logs: $STATE)
  aurum metrics      http://127.0.0.1:$TESTBED_AURUM_PORT/metrics   agent $agent
  Prometheus         http://127.0.0.1:$TESTBED_PROMETHEUS_PORT/   (rules from alerting/, alerts at /alerts)
  Alertmanager       http://127.0.0.1:$TESTBED_ALERTMANAGER_PORT/
  RabbitMQ metrics   http://127.0.0.1:$TESTBED_RABBITMQ_PROMETHEUS_PORT/metrics   (the broker's own ground truth)
  Shop API           http://127.0.0.1:$TESTBED_SHOP_API_PORT/products   /orders
  CRM API            http://127.0.0.1:$TESTBED_CRM_API_PORT/customers   /customers/1/orders
  MES API            http://127.0.0.1:$TESTBED_MES_API_PORT/jobs        /stats
  Shop DB / MES DB   psql -h 127.0.0.1 -p $TESTBED_SHOP_DB_PORT -U shop shop  /  psql -h 127.0.0.1 -p $TESTBED_MES_DB_PORT -U mes mes
  S3 storage         http://127.0.0.1:$TESTBED_S3_PORT/  (bucket invoices, key S3RVER/S3RVER)
Load:  /usr/bin/python3 tests/testbed/loadgen.py --rate 50 --duration 60 [--error-share 0.2]
       [--delay-ms 300] [--cpu-ms 20] [--poison-share 0.1] [--slow-ms 5000] [--hold-db-connections 85]
Stop:  scripts/demo.sh down
EOF
}

check_ports() { # every testbed port is free or held by this testbed
  local var port pid
  for var in $(compgen -v TESTBED_); do
    port=${!var}
    for pid in $(ss -Htlnp "sport = :$port" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
      has_mark "$pid" || die "port $port ($var) is taken by pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
    done
  done
}

cmd_up() {
  local t0=$SECONDS
  install_deps
  [[ -n $PGBIN ]] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  prepare_state
  check_ports
  rabbitmq_start          # the slowest to start: let it boot while the rest comes up
  agent_up                # before the services, so that it sees every connection they open
  pg_up shop-db "$TESTBED_SHOP_DB_PORT" "$TB/sql/shop.sql"
  pg_up mes-db "$TESTBED_MES_DB_PORT" "$TB/sql/mes.sql"
  s3_up
  rabbitmq_wait
  wait_for s3-storage 30 port_open "$TESTBED_S3_PORT" || die "s3-storage (log/s3-storage.log)"
  apis_up
  prometheus_up
  log "up in $((SECONDS - t0))s"
  where_to_look
}

cmd_down() {
  local t0=$SECONDS name left
  [[ -d $STATE ]] || { log "nothing to stop"; return 0; }
  for name in crm-api shop-api mes-api prometheus alertmanager s3-storage; do stop_pid "$name"; done
  rabbitmq_down
  pg_down shop-db
  pg_down mes-db
  stop_pid aurum
  left=$(marked_pids | tr '\n' ' ')
  if [[ -n ${left// } ]]; then
    log "killing leftovers: $left"
    kill -KILL $left 2>/dev/null || true
    sleep 0.5
  fi
  left=$(marked_pids | tr '\n' ' ')
  [[ -z ${left// } ]] || die "still running after down: $left"
  log "down in $((SECONDS - t0))s; data stays in $STATE"
}

cmd_status() {
  local name port rc=0
  printf '%-14s %-8s %-6s %s\n' component pid port listening
  while read -r name port; do
    local pid=-
    case $name in
      shop-db|mes-db) [[ -f $STATE/$name/data/postmaster.pid ]] && pid=$(head -1 "$STATE/$name/data/postmaster.pid") ;;
      *) alive "$name" && pid=$(<"$(pidfile "$name")") ;;
    esac
    local up=no; port_open "$port" && up=yes
    [[ $up == yes ]] || rc=1
    printf '%-14s %-8s %-6s %s\n' "$name" "$pid" "$port" "$up"
  done <<EOF
shop-api $TESTBED_SHOP_API_PORT
crm-api $TESTBED_CRM_API_PORT
mes-api $TESTBED_MES_API_PORT
shop-db $TESTBED_SHOP_DB_PORT
mes-db $TESTBED_MES_DB_PORT
rabbitmq $TESTBED_AMQP_PORT
s3-storage $TESTBED_S3_PORT
aurum $TESTBED_AURUM_PORT
prometheus $TESTBED_PROMETHEUS_PORT
alertmanager $TESTBED_ALERTMANAGER_PORT
EOF
  return $rc
}

cmd_clean() { # down, then remove the state folder (the tests start from nothing)
  cmd_down
  if [[ -d $STATE/run && -d $STATE/log ]]; then
    rm -rf -- "$STATE"
    log "removed $STATE"
  elif [[ -e $STATE ]]; then
    die "$STATE does not look like a testbed state folder (no run/ and log/); not removing it"
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  clean) cmd_clean ;;
  running) [[ -n $(marked_pids) ]] ;;  # exit 0 when any process of this testbed runs
  status) cmd_status ;;
  *) echo "usage: $0 up|down|clean|status" >&2; exit 2 ;;
esac
