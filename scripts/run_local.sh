#!/usr/bin/env bash
# Run the whole Movie Booking system as local processes (no Docker engine needed):
# the five services, a mail catcher and the NGINX gateway, against PostgreSQL,
# Redis and RabbitMQ on localhost.
#
#   scripts/run_local.sh up       install what is missing, prepare the database, start, wait for health;
#                                 on a partly running system (a part crashed): start only the parts that
#                                 are not running, with the settings the system was started with
#   scripts/run_local.sh down     stop everything this script started (PID files), nothing else
#   scripts/run_local.sh status   every part with its pid and health; exit 1 naming each part that is down
#   scripts/run_local.sh logs [NAME]   tail the logs (auth, movie, booking, payment, notification, gateway, mail)
#
# Each service starts with exactly the command its container runs:
#   python -m servicekit.serve <package>
# With a Docker engine present and USE_DOCKER=1, `up`/`down` hand over to docker compose.
#
# Settings (environment; defaults in brackets). A running system keeps the ones it was started
# with in $RUN_DIR/instance.env: `status`, and `up` while any part runs, take them from there.
#   RUN_DIR [var/local]  DB_NAME [moviebooking]  GATEWAY_PORT [80, or 8080 when 80 is taken]
#   AUTH_PORT..NOTIFICATION_PORT [8001..8005]  BOOKING_REPLICAS, PAYMENT_REPLICAS [1]  SMTP_PORT [1025]
#     (replica N of a service listens on its port + 10 x (N - 1))
#   PGHOST/PGPORT [127.0.0.1/5432]  REDIS_URL  RABBITMQ_URL  EVENTS_EXCHANGE  QUEUE_PREFIX  REDIS_PREFIX
#   DATABASE_HOSTS [PGHOST:PGPORT]  "host:port,host:port": the services' DATABASE_URL lists every
#     node and asks for the one that takes writes (target_session_attrs=read-write); PGHOST/PGPORT
#     still name the primary that scripts/db_setup.sh prepares.
#   AUTH_DATABASE_HOSTS..NOTIFICATION_DATABASE_HOSTS [DATABASE_HOSTS]  the same for one service
#   BOOKING_BALANCER_PORT [none]  NGINX also balances the other services' calls to booking over
#     its replicas on 127.0.0.1:<this port> (every route, internal ones too: what the
#     booking-service name does in compose and Kubernetes); without it they call booking's first
#     replica directly.
#   AUTH_TOKEN_RATE [10r/s] AUTH_TOKEN_BURST [20] API_RATE [2000r/s] API_BURST [4000]
#   ENVIRONMENT [development]  EXTRA_SERVICE_ENV (more NAME=value for every service)
#   DB_FRESH (non-empty: a fresh start re-creates the database)  DB_PASSWORD (not recorded)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

RUN_DIR="$(abspath "${RUN_DIR:-var/local}")"
DB_NAME="${DB_NAME:-moviebooking}"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}"
AUTH_PORT="${AUTH_PORT:-8001}" MOVIE_PORT="${MOVIE_PORT:-8002}" BOOKING_PORT="${BOOKING_PORT:-8003}"
PAYMENT_PORT="${PAYMENT_PORT:-8004}" NOTIFICATION_PORT="${NOTIFICATION_PORT:-8005}"
BOOKING_REPLICAS="${BOOKING_REPLICAS:-1}" PAYMENT_REPLICAS="${PAYMENT_REPLICAS:-1}"
DATABASE_HOSTS="${DATABASE_HOSTS:-}" BOOKING_BALANCER_PORT="${BOOKING_BALANCER_PORT:-}"
AUTH_DATABASE_HOSTS="${AUTH_DATABASE_HOSTS:-}" MOVIE_DATABASE_HOSTS="${MOVIE_DATABASE_HOSTS:-}"
BOOKING_DATABASE_HOSTS="${BOOKING_DATABASE_HOSTS:-}" PAYMENT_DATABASE_HOSTS="${PAYMENT_DATABASE_HOSTS:-}"
NOTIFICATION_DATABASE_HOSTS="${NOTIFICATION_DATABASE_HOSTS:-}"
SMTP_PORT="${SMTP_PORT:-1025}" GATEWAY_PORT="${GATEWAY_PORT:-}"
ENVIRONMENT="${ENVIRONMENT:-development}" EXTRA_SERVICE_ENV="${EXTRA_SERVICE_ENV:-}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}" REDIS_PREFIX="${REDIS_PREFIX:-mb:}"
RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}"
EVENTS_EXCHANGE="${EVENTS_EXCHANGE:-booking_events}" QUEUE_PREFIX="${QUEUE_PREFIX:-}"
AUTH_TOKEN_RATE="${AUTH_TOKEN_RATE:-10r/s}" AUTH_TOKEN_BURST="${AUTH_TOKEN_BURST:-20}"
API_RATE="${API_RATE:-2000r/s}" API_BURST="${API_BURST:-4000}"
# What $RUN_DIR/instance.env records (secrets such as DB_PASSWORD stay in the environment).
SETTINGS=(DB_NAME PGHOST PGPORT AUTH_PORT MOVIE_PORT BOOKING_PORT PAYMENT_PORT NOTIFICATION_PORT
  BOOKING_REPLICAS SMTP_PORT GATEWAY_PORT ENVIRONMENT EXTRA_SERVICE_ENV REDIS_URL REDIS_PREFIX
  RABBITMQ_URL EVENTS_EXCHANGE QUEUE_PREFIX AUTH_TOKEN_RATE AUTH_TOKEN_BURST API_RATE API_BURST
  PAYMENT_REPLICAS DATABASE_HOSTS AUTH_DATABASE_HOSTS MOVIE_DATABASE_HOSTS BOOKING_DATABASE_HOSTS
  PAYMENT_DATABASE_HOSTS NOTIFICATION_DATABASE_HOSTS BOOKING_BALANCER_PORT)
SERVICES=(auth movie booking payment notification)

service_port() { local var="${1^^}_PORT"; echo "${!var}"; }

service_replicas() {
  case "$1" in
    booking) echo "$BOOKING_REPLICAS" ;;
    payment) echo "$PAYMENT_REPLICAS" ;;
    *) echo 1 ;;
  esac
}

pick_gateway_port() {
  if [[ -n "$GATEWAY_PORT" ]]; then echo "$GATEWAY_PORT"; return; fi
  if port_free 80; then echo 80; else echo 8080; fi
}

write_instance_file() {
  # The settings this instance runs with, NAME=value a line (unquoted): the runner reads them
  # back (status, up after a crash), and so do tools that drive the instance (scripts/benchmark).
  local name
  mkdir -p "$RUN_DIR"
  for name in "${SETTINGS[@]}"; do printf '%s=%s\n' "$name" "${!name}"; done >"$RUN_DIR/instance.env"
}

load_instance_file() {
  local line name
  [[ -f "$RUN_DIR/instance.env" ]] || return 0
  while IFS= read -r line; do
    name="${line%%=*}"
    if [[ " ${SETTINGS[*]} " == *" $name "* ]]; then printf -v "$name" '%s' "${line#*=}"; fi
  done <"$RUN_DIR/instance.env"
  export PGHOST PGPORT
}

# --- The parts: mail, each service and booking replica, gateway (in start order) ---

part_names() {
  local svc i
  echo mail
  for svc in "${SERVICES[@]}"; do
    echo "$svc"
    for ((i = 2; i <= $(service_replicas "$svc"); i++)); do echo "$svc-$i"; done
  done
  echo gateway
}

part_port() {
  case "$1" in
    mail) echo "$SMTP_PORT" ;;
    gateway) echo "$GATEWAY_PORT" ;;
    *-*) echo "$(($(service_port "${1%%-*}") + 10 * (${1#*-} - 1)))" ;;
    *) service_port "$1" ;;
  esac
}

part_pid_file() { if [[ "$1" == gateway ]]; then echo "$RUN_DIR/nginx.pid"; else echo "$RUN_DIR/pids/$1.pid"; fi; }
part_pid() { cat "$(part_pid_file "$1")" 2>/dev/null || true; }
part_log() { if [[ "$1" == gateway ]]; then echo "$RUN_DIR/logs/gateway-error.log"; else echo "$RUN_DIR/logs/$1.log"; fi; }

part_running() {
  # Its pid file names a live process that runs this part (a stale file's pid may be dead,
  # a zombie, whose args read "[name] <defunct>", or taken by some other program since).
  local pid args
  pid="$(part_pid "$1")"
  pid_alive "$pid" || return 1
  args="$(ps -o args= -p "$pid" 2>/dev/null || true)"
  case "$1" in
    mail) [[ "$args" == *scripts/mailcatcher.py*"--dir $RUN_DIR/mail"* ]] ;;
    gateway) [[ "$args" == *"nginx -c $RUN_DIR/nginx/nginx.conf"* ]] ;;
    *) [[ "$args" == *"servicekit.serve ${1%%-*}_service"* ]] ;;
  esac
}

part_health() {
  # Prints what the part answers on its port; fails unless it is healthy.
  local port answer code
  port="$(part_port "$1")"
  if [[ "$1" == mail ]]; then
    if port_free "$port"; then echo "nothing listens on :$port"; return 1; fi
    echo "listening on :$port"; return 0
  fi
  answer="$(curl -s -m 2 -w '\n%{http_code}' "http://127.0.0.1:${port}/health" || true)"
  code="${answer##*$'\n'}"
  if [[ "$code" == 200 ]]; then echo "healthy on :$port"; return 0; fi
  if [[ "$code" == 000 ]]; then echo "no answer on :$port"; else echo "unhealthy on :$port: HTTP $code ${answer%$'\n'*}"; fi
  return 1
}

database_url() {
  # One node (PGHOST:PGPORT), or every node of DATABASE_HOSTS (or the service's own list).
  local svc="$1" hosts_var="${1^^}_DATABASE_HOSTS" hosts query="" host
  local login="${svc}_service:${DB_PASSWORD:-dev-only-db-password}"
  hosts="${!hosts_var:-$DATABASE_HOSTS}"
  if [[ -z "$hosts" ]]; then
    echo "postgresql+asyncpg://${login}@${PGHOST}:${PGPORT}/${DB_NAME}"
    return
  fi
  for host in ${hosts//,/ }; do query+="host=${host}&"; done
  echo "postgresql+asyncpg://${login}@/${DB_NAME}?${query}target_session_attrs=read-write"
}

booking_url() {
  if [[ -n "$BOOKING_BALANCER_PORT" ]]; then echo "http://127.0.0.1:${BOOKING_BALANCER_PORT}"; else echo "http://127.0.0.1:${BOOKING_PORT}"; fi
}

service_env() {
  # The environment one service process gets (the same names compose and k8s set).
  local svc="$1" port="$2"
  echo "PORT=$port" "HOST=127.0.0.1" "ENVIRONMENT=${ENVIRONMENT}" "DATABASE_URL=$(database_url "$svc")" \
    "REDIS_URL=${REDIS_URL}" "REDIS_PREFIX=${REDIS_PREFIX}" "RABBITMQ_URL=${RABBITMQ_URL}" \
    "EVENTS_EXCHANGE=${EVENTS_EXCHANGE}" "QUEUE_PREFIX=${QUEUE_PREFIX}" \
    "MOVIE_SERVICE_URL=http://127.0.0.1:${MOVIE_PORT}" "BOOKING_SERVICE_URL=$(booking_url)" \
    "SMTP_HOST=127.0.0.1" "SMTP_PORT=${SMTP_PORT}" ${EXTRA_SERVICE_ENV}
}

start_process() {
  # start_process NAME -- command...   (own session, so `down` can stop the whole group)
  local name="$1"; shift 2
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
  setsid "$@" >>"$RUN_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/pids/$name.pid"
}

upstream_lines() {
  local svc="$1" port i lines=""
  port="$(service_port "$svc")"
  lines="server 127.0.0.1:${port} max_fails=1 fail_timeout=2s;"
  for ((i = 2; i <= $(service_replicas "$svc"); i++)); do
    lines+=" server 127.0.0.1:$((port + 10 * (i - 1))) max_fails=1 fail_timeout=2s;"
  done
  echo "$lines"
}

start_gateway() {
  mkdir -p "$RUN_DIR/nginx"/{client_body,proxy,fastcgi,uwsgi,scgi} "$RUN_DIR/logs"
  export RUN_DIR GATEWAY_PORT WEB_ROOT="$ROOT/web" ACCESS_LOG="$RUN_DIR/logs/gateway.log"
  export SEAT_MAP_CACHE_DIR="$RUN_DIR/nginx/seat_maps"
  export NGINX_USER="$(id -un)"
  export AUTH_TOKEN_RATE AUTH_TOKEN_BURST API_RATE API_BURST
  export AUTH_SERVERS="$(upstream_lines auth)" MOVIE_SERVERS="$(upstream_lines movie)"
  export BOOKING_SERVERS="$(upstream_lines booking)" PAYMENT_SERVERS="$(upstream_lines payment)"
  export NOTIFICATION_SERVERS="$(upstream_lines notification)"
  "$PY" scripts/render_gateway.py gateway/nginx.conf.template "$RUN_DIR/nginx/gateway.conf"
  "$PY" scripts/render_gateway.py gateway/nginx.native.conf.template "$RUN_DIR/nginx/nginx.conf"
  rm -rf "$RUN_DIR/nginx/internal"
  if [[ -n "$BOOKING_BALANCER_PORT" ]]; then
    mkdir -p "$RUN_DIR/nginx/internal"
    BOOKING_BALANCER_PORT="$BOOKING_BALANCER_PORT" "$PY" scripts/render_gateway.py \
      gateway/nginx.booking-balancer.conf.template "$RUN_DIR/nginx/internal/booking-balancer.conf"
  fi
  nginx -t -q -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx"
  nginx -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx"
  echo "$GATEWAY_PORT" >"$RUN_DIR/gateway.port"
}

start_part() {
  case "$1" in
    mail) start_process mail -- "$PY" scripts/mailcatcher.py --port "$SMTP_PORT" --dir "$RUN_DIR/mail" ;;
    gateway) start_gateway ;;
    *) start_process "$1" -- env $(service_env "${1%%-*}" "$(part_port "$1")") "$PY" -m servicekit.serve "${1%%-*}_service" ;;
  esac
}

wait_part() {
  case "$1" in
    mail) wait_port "$SMTP_PORT" 20 "$(part_pid mail)" ;;
    gateway) wait_http "http://127.0.0.1:${GATEWAY_PORT}/api/auth/health" 20 ;;
    *) wait_http "http://127.0.0.1:$(part_port "$1")/health" 60 "$(part_pid "$1")" ;;
  esac
}

start_parts() {
  # start_parts NAME...: start them (in this order), then wait until each one is healthy
  local name
  for name; do start_part "$name"; done
  for name; do
    wait_part "$name" || {
      echo "!! $name did not become healthy; last log lines:" >&2
      tail -n 30 "$(part_log "$name")" >&2 || true
      return 1
    }
  done
}

stop_part() {
  # Stop one part and drop its pid file. A crashed leader may have left workers in its group
  # (holding its port): they go too. A pid that another program has taken since is left alone.
  local pid
  pid="$(part_pid "$1")"
  if part_running "$1"; then
    if [[ "$1" == gateway ]]; then
      nginx -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx" -s quit 2>/dev/null || true
      wait_gone "$pid" 10 || true
    fi
    stop_group "$pid"
  elif ! pid_alive "$pid" || pid_zombie "$pid"; then
    stop_group "$pid"
  fi
  rm -f "$(part_pid_file "$1")"
}

stop_all() {
  # Every part that has a pid file (whatever the settings say), the gateway first.
  local pidfile
  stop_part gateway
  for pidfile in "$RUN_DIR"/pids/*.pid; do
    if [[ -f "$pidfile" ]]; then stop_part "$(basename "$pidfile" .pid)"; fi
  done
}

running_parts() {
  # The parts of the instance in $RUN_DIR that run now (with the settings it was started with).
  local name
  load_instance_file
  for name in $(part_names); do
    if part_running "$name"; then echo "$name"; fi
  done
}

cmd_up() {
  if [[ "${USE_DOCKER:-0}" == 1 ]] && docker info >/dev/null 2>&1; then
    exec docker compose up -d --build
  fi
  local name missing=()
  if [[ -z "$(running_parts)" ]]; then start_instance; return; fi
  load_instance_file
  for name in $(part_names); do
    if ! part_running "$name"; then missing+=("$name"); fi
  done
  if ((${#missing[@]} == 0)); then
    echo "already running, every part (scripts/run_local.sh status)"
    return 0
  fi
  restart_parts "${missing[@]}"
}

start_instance() {
  # Nothing runs: a fresh start, after clearing what a crash of everything left behind.
  ensure_python_env
  ensure_nginx
  require_servers
  stop_all
  DB_PASSWORD="${DB_PASSWORD:-dev-only-db-password}" PYTHON="$PY" bash scripts/db_setup.sh "$DB_NAME" ${DB_FRESH:+--fresh} >/dev/null
  GATEWAY_PORT="$(pick_gateway_port)"
  write_instance_file
  # shellcheck disable=SC2046
  if ! start_parts $(part_names); then cmd_down; return 1; fi
  print_urls "Movie Booking is up."
}

restart_parts() {
  # Part of the instance runs: start the missing parts with its settings, leave the rest alone.
  # The database is not prepared again: the running parts use it.
  local name
  echo "not running: $*; starting them (the other parts keep running)"
  [[ -z "${DB_FRESH:-}" ]] || echo "DB_FRESH ignored: the running parts use the database"
  require_servers
  if [[ " $* " == *" gateway "* ]]; then ensure_nginx; fi
  for name; do stop_part "$name"; done  # stale pid files, and what a crashed leader left
  if ! start_parts "$@"; then
    for name; do stop_part "$name"; done
    echo "!! could not start again: $* (stopped them; the other parts keep running)" >&2
    return 1
  fi
  print_urls "Movie Booking is up (started again: $*)."
}

print_urls() {
  cat <<EOF
$1
  Gateway (API + web page)  http://localhost:$GATEWAY_PORT
  Swagger UIs               http://localhost:${AUTH_PORT}/docs ... http://localhost:${NOTIFICATION_PORT}/docs
  Mails (one .eml per mail) $RUN_DIR/mail
  Logs                      scripts/run_local.sh logs [auth|movie|booking|payment|notification|gateway|mail]
  Each part and its health  scripts/run_local.sh status
  Stop                      scripts/run_local.sh down
EOF
}

cmd_down() {
  if [[ "${USE_DOCKER:-0}" == 1 ]] && docker info >/dev/null 2>&1; then
    exec docker compose down
  fi
  stop_all
  rm -f "$RUN_DIR/gateway.port" "$RUN_DIR/instance.env"
  echo "stopped"
}

cmd_status() {
  # Every part, its pid and health; exit 1 with a line naming each part that is down.
  local name pid state down=()
  load_instance_file
  printf '%-14s %-8s %s\n' PART PID STATE
  for name in $(part_names); do
    pid="$(part_pid "$name")"
    if ! part_running "$name"; then
      state="not running${pid:+ (stale pid file: $pid)}"
      down+=("$name")
    elif ! state="running, $(part_health "$name")"; then
      down+=("$name")
    fi
    printf '%-14s %-8s %s\n' "$name" "${pid:--}" "$state"
  done
  if ((${#down[@]})); then
    echo "down: ${down[*]}"
    return 1
  fi
  echo "all parts up"
}

cmd_logs() {
  local name="${1:-}"
  if [[ -n "$name" ]]; then tail -n 100 -f "$RUN_DIR/logs/$name.log"; else tail -n 20 -f "$RUN_DIR"/logs/*.log; fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  *) echo "usage: $0 up|down|status|logs [name]" >&2; exit 2 ;;
esac
