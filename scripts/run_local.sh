#!/usr/bin/env bash
# Run the whole Movie Booking system as local processes (no Docker engine needed):
# the five services, a mail catcher and the NGINX gateway, against PostgreSQL,
# Redis and RabbitMQ on localhost.
#
#   scripts/run_local.sh up       install what is missing, prepare the database, start, wait for health
#   scripts/run_local.sh down     stop everything this script started (PID files), nothing else
#   scripts/run_local.sh status   what runs, and each /health
#   scripts/run_local.sh logs [NAME]   tail the logs (auth, movie, booking, payment, notification, gateway, mail)
#
# Each service starts with exactly the command its container runs:
#   python -m servicekit.serve <package>
# With a Docker engine present and USE_DOCKER=1, `up`/`down` hand over to docker compose.
#
# Settings (environment; defaults in brackets):
#   RUN_DIR [var/local]  DB_NAME [moviebooking]  GATEWAY_PORT [80, or 8080 when 80 is taken]
#   AUTH_PORT..NOTIFICATION_PORT [8001..8005]  BOOKING_REPLICAS [1]  SMTP_PORT [1025]
#   PGHOST/PGPORT [127.0.0.1/5432]  REDIS_URL  RABBITMQ_URL  EVENTS_EXCHANGE  QUEUE_PREFIX  REDIS_PREFIX
#   AUTH_TOKEN_RATE [10r/s] AUTH_TOKEN_BURST [20] API_RATE [2000r/s] API_BURST [4000]
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
BOOKING_REPLICAS="${BOOKING_REPLICAS:-1}"
SMTP_PORT="${SMTP_PORT:-1025}"
SERVICES=(auth movie booking payment notification)

service_port() { local var="${1^^}_PORT"; echo "${!var}"; }

pick_gateway_port() {
  if [[ -n "${GATEWAY_PORT:-}" ]]; then echo "$GATEWAY_PORT"; return; fi
  if port_free 80; then echo 80; else echo 8080; fi
}

service_env() {
  # The environment one service process gets (the same names compose and k8s set).
  local svc="$1" port="$2"
  echo "PORT=$port" "HOST=127.0.0.1" "ENVIRONMENT=${ENVIRONMENT:-development}" \
    "DATABASE_URL=postgresql+asyncpg://${svc}_service:${DB_PASSWORD:-dev-only-db-password}@${PGHOST}:${PGPORT}/${DB_NAME}" \
    "REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}" "REDIS_PREFIX=${REDIS_PREFIX:-mb:}" \
    "RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}" \
    "EVENTS_EXCHANGE=${EVENTS_EXCHANGE:-booking_events}" "QUEUE_PREFIX=${QUEUE_PREFIX:-}" \
    "MOVIE_SERVICE_URL=http://127.0.0.1:${MOVIE_PORT}" "BOOKING_SERVICE_URL=http://127.0.0.1:${BOOKING_PORT}" \
    "SMTP_HOST=127.0.0.1" "SMTP_PORT=${SMTP_PORT}" ${EXTRA_SERVICE_ENV:-}
}

start_process() {
  # start_process NAME -- command...   (own session, so `down` can stop the whole group)
  local name="$1"; shift 2
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
  setsid "$@" >>"$RUN_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/pids/$name.pid"
}

start_services() {
  local svc port i
  for svc in "${SERVICES[@]}"; do
    port="$(service_port "$svc")"
    start_process "$svc" -- env $(service_env "$svc" "$port") "$PY" -m servicekit.serve "${svc}_service"
    if [[ "$svc" == booking ]]; then
      for ((i = 2; i <= BOOKING_REPLICAS; i++)); do
        start_process "booking-$i" -- env $(service_env booking "$((port + 10 * (i - 1)))") \
          "$PY" -m servicekit.serve booking_service
      done
    fi
  done
}

upstream_lines() {
  local svc="$1" port i lines=""
  port="$(service_port "$svc")"
  lines="server 127.0.0.1:${port} max_fails=1 fail_timeout=2s;"
  if [[ "$svc" == booking ]]; then
    for ((i = 2; i <= BOOKING_REPLICAS; i++)); do
      lines+=" server 127.0.0.1:$((port + 10 * (i - 1))) max_fails=1 fail_timeout=2s;"
    done
  fi
  echo "$lines"
}

start_gateway() {
  local port="$1"
  mkdir -p "$RUN_DIR/nginx"/{client_body,proxy,fastcgi,uwsgi,scgi} "$RUN_DIR/logs"
  export RUN_DIR GATEWAY_PORT="$port" WEB_ROOT="$ROOT/web" ACCESS_LOG="$RUN_DIR/logs/gateway.log"
  export SEAT_MAP_CACHE_DIR="$RUN_DIR/nginx/seat_maps"
  export NGINX_USER="$(id -un)"
  export AUTH_TOKEN_RATE="${AUTH_TOKEN_RATE:-10r/s}" AUTH_TOKEN_BURST="${AUTH_TOKEN_BURST:-20}"
  export API_RATE="${API_RATE:-2000r/s}" API_BURST="${API_BURST:-4000}"
  export AUTH_SERVERS="$(upstream_lines auth)" MOVIE_SERVERS="$(upstream_lines movie)"
  export BOOKING_SERVERS="$(upstream_lines booking)" PAYMENT_SERVERS="$(upstream_lines payment)"
  export NOTIFICATION_SERVERS="$(upstream_lines notification)"
  "$PY" scripts/render_gateway.py gateway/nginx.conf.template "$RUN_DIR/nginx/gateway.conf"
  "$PY" scripts/render_gateway.py gateway/nginx.native.conf.template "$RUN_DIR/nginx/nginx.conf"
  nginx -t -q -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx"
  nginx -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx"
  echo "$port" >"$RUN_DIR/gateway.port"
}

write_instance_file() {
  # What tools that drive this instance need to find its parts (scripts/benchmark reads it).
  cat >"$RUN_DIR/instance.env" <<EOF
DB_NAME=$DB_NAME
RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}
QUEUE_PREFIX=${QUEUE_PREFIX:-}
EOF
}

wait_healthy() {
  local svc port
  for svc in "${SERVICES[@]}"; do
    port="$(service_port "$svc")"
    wait_http "http://127.0.0.1:${port}/health" 60 "$(cat "$RUN_DIR/pids/$svc.pid")" || {
      echo "!! $svc did not become healthy; last log lines:" >&2
      tail -n 30 "$RUN_DIR/logs/$svc.log" >&2
      return 1
    }
  done
  wait_http "http://127.0.0.1:$1/api/auth/health" 20
}

cmd_up() {
  if [[ "${USE_DOCKER:-0}" == 1 ]] && docker info >/dev/null 2>&1; then
    exec docker compose up -d --build
  fi
  if [[ -f "$RUN_DIR/pids/auth.pid" ]] && pid_alive "$(cat "$RUN_DIR/pids/auth.pid")"; then
    echo "already running (scripts/run_local.sh status)"; return 0
  fi
  ensure_python_env
  ensure_nginx
  require_servers
  DB_PASSWORD="${DB_PASSWORD:-dev-only-db-password}" PYTHON="$PY" bash scripts/db_setup.sh "$DB_NAME" ${DB_FRESH:+--fresh} >/dev/null
  local gw_port; gw_port="$(pick_gateway_port)"
  start_process mail -- "$PY" scripts/mailcatcher.py --port "$SMTP_PORT" --dir "$RUN_DIR/mail"
  start_services
  start_gateway "$gw_port"
  write_instance_file
  if ! wait_healthy "$gw_port"; then cmd_down; return 1; fi
  print_urls "$gw_port"
}

print_urls() {
  cat <<EOF
Movie Booking is up.
  Gateway (API + web page)  http://localhost:$1
  Swagger UIs               http://localhost:${AUTH_PORT}/docs ... http://localhost:${NOTIFICATION_PORT}/docs
  Mails (one .eml per mail) $RUN_DIR/mail
  Logs                      scripts/run_local.sh logs [auth|movie|booking|payment|notification|gateway|mail]
  Stop                      scripts/run_local.sh down
EOF
}

cmd_down() {
  if [[ "${USE_DOCKER:-0}" == 1 ]] && docker info >/dev/null 2>&1; then
    exec docker compose down
  fi
  if [[ -f "$RUN_DIR/nginx.pid" ]]; then
    local nginx_pid; nginx_pid="$(cat "$RUN_DIR/nginx.pid" 2>/dev/null || true)"
    nginx -c "$RUN_DIR/nginx/nginx.conf" -p "$RUN_DIR/nginx" -s quit 2>/dev/null || true
    wait_gone "$nginx_pid" 10 || stop_group "$nginx_pid"
    rm -f "$RUN_DIR/nginx.pid"
  fi
  local pidfile
  for pidfile in "$RUN_DIR"/pids/*.pid; do
    [[ -f "$pidfile" ]] || continue
    stop_group "$(cat "$pidfile")"
    rm -f "$pidfile"
  done
  rm -f "$RUN_DIR/gateway.port" "$RUN_DIR/instance.env"
  echo "stopped"
}

cmd_status() {
  local pidfile name port state
  for pidfile in "$RUN_DIR"/pids/*.pid; do
    [[ -f "$pidfile" ]] || { echo "nothing running"; return 0; }
    name="$(basename "$pidfile" .pid)"
    state="dead"; pid_alive "$(cat "$pidfile")" && state="running"
    port="$(service_port "${name%%-*}" 2>/dev/null || true)"
    if [[ -n "$port" && "$state" == running && "$name" != mail ]]; then
      state+=" $(curl -s -m 2 "http://127.0.0.1:${port}/health" || echo 'no answer')"
    fi
    printf '%-14s %s\n' "$name" "$state"
  done
  if [[ -f "$RUN_DIR/gateway.port" ]]; then
    printf '%-14s %s\n' gateway "port $(cat "$RUN_DIR/gateway.port") $(curl -s -m 2 "http://127.0.0.1:$(cat "$RUN_DIR/gateway.port")/health")"
  fi
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
