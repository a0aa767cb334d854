# Shared helpers of scripts/run_local.sh and scripts/test.sh (sourced, not run).

ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PY="$ROOT/.venv/bin/python"
UV_VERSION="0.13.9"
APT_UPDATED=0

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [[ "${1:-0}" =~ ^[1-9][0-9]*$ ]] && kill -0 "$1" 2>/dev/null; }

# Exited, not yet reaped by its parent: kill -0 still finds it, but nothing runs.
pid_zombie() { [[ "${1:-0}" =~ ^[1-9][0-9]*$ && "$(ps -o stat= -p "$1" 2>/dev/null)" == Z* ]]; }

group_alive() {
  # group_alive PID: the process, or any process left in the group it led (a crashed leader's
  # workers keep serving its port). Zombies count until reaped, so waiting on it waits for that.
  pid_alive "${1:-}" || { [[ "${1:-0}" =~ ^[1-9][0-9]*$ ]] && kill -0 -- "-$1" 2>/dev/null; }
}

wait_http() {
  # wait_http URL SECONDS [PID]: until URL answers 200 (fails at once if PID dies)
  local url="$1" deadline=$((SECONDS + $2)) pid="${3:-}"
  while ((SECONDS < deadline)); do
    if [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url")" == 200 ]]; then return 0; fi
    if [[ -n "$pid" ]] && ! pid_alive "$pid"; then echo "!! process $pid exited" >&2; return 1; fi
    sleep 0.3
  done
  echo "!! $url did not answer 200 within $2 s" >&2
  return 1
}

wait_port() {
  # wait_port PORT SECONDS [PID]: until something accepts connections on 127.0.0.1:PORT
  local port="$1" deadline=$((SECONDS + $2)) pid="${3:-}"
  while ((SECONDS < deadline)); do
    port_free "$port" || return 0
    if [[ -n "$pid" ]] && ! pid_alive "$pid"; then echo "!! process $pid exited" >&2; return 1; fi
    sleep 0.3
  done
  echo "!! nothing listens on port $port after $2 s" >&2
  return 1
}

wait_gone() {
  # wait_gone PID SECONDS: until the process and every process of the group it led are gone
  local pid="$1" deadline=$((SECONDS + $2))
  while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  ! group_alive "$pid" || return 1
}

stop_group() {
  # TERM the process group the runner started, then KILL what is left. The leader may be
  # gone already (a crash): what is left of its group (workers holding its port) still goes.
  local pid="$1"
  group_alive "$pid" || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 15; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; fi
  wait_gone "$pid" 5 || true
}

apt_install() {
  # apt_install PACKAGE...: install Debian packages that are missing (as root, or with sudo)
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  if [[ "$APT_UPDATED" == 0 ]]; then $sudo apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then UV="$(command -v uv)"; return; fi
  if [[ ! -x "$ROOT/.tools/bin/uv" ]]; then
    python3 -m venv "$ROOT/.tools"
    "$ROOT/.tools/bin/pip" install -q "uv==$UV_VERSION"
  fi
  UV="$ROOT/.tools/bin/uv"
}

ensure_python_env() {
  # The project's venv (.venv) from the lock file: every service, the shared library, dev tools.
  ensure_uv
  export SSL_CERT_FILE="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
  "$UV" sync --frozen --quiet --python python3
}

ensure_nginx() {
  command -v nginx >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
  command -v nginx >/dev/null 2>&1 && return 0
  echo "installing nginx (apt-get)"
  apt_install nginx
  # Debian's package may start a default server on :80; the runner needs none of it.
  if pgrep -x nginx >/dev/null && [[ -f /run/nginx.pid ]]; then
    nginx -s quit 2>/dev/null || true
  fi
}

require_servers() {
  local failed=0
  pg_up || { echo "!! PostgreSQL is not reachable on ${PGHOST:-127.0.0.1}:${PGPORT:-5432}" >&2; failed=1; }
  (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || { echo "!! Redis is not reachable on 127.0.0.1:6379" >&2; failed=1; }
  (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || { echo "!! RabbitMQ is not reachable on 127.0.0.1:5672" >&2; failed=1; }
  return "$failed"
}

pg_up() { (exec 3<>"/dev/tcp/${PGHOST:-127.0.0.1}/${PGPORT:-5432}") 2>/dev/null; }
