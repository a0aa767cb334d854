#!/usr/bin/env bash
# The whole test suite, from a machine that has never seen the project:
#   scripts/test.sh            everything: lint, unit + integration, system tests through the gateway,
#                              then scripts/chaos.sh (node failures on a private HA topology)
#   scripts/test.sh --fast     lint + unit + integration only (no running system)
#
# It installs what it needs (uv + the locked venv, nginx, promtool, pgbouncer, chromium),
# prepares a fresh test database, runs pytest against the real PostgreSQL, Redis
# and RabbitMQ, then starts the whole system with scripts/run_local.sh on test
# ports and runs the system tests and the end-to-end script through NGINX.
# Tests use their own database names, Redis key prefixes, exchange and queue
# names, so they run again cleanly on a dirty machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

FAST=0
[[ "${1:-}" == "--fast" ]] && FAST=1
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}"
export TEST_DATABASE_NAME="${TEST_DATABASE_NAME:-moviebooking_test}"
SYSTEM_RUN_DIR="$ROOT/var/test-system"
FAILED=()

step() { printf '\n=== %s\n' "$*"; }

run_pytest() {
  # pytest's "no tests ran" (exit 5) is a failure here, never a pass.
  local rc=0
  "$ROOT/.venv/bin/pytest" "$@" || rc=$?
  if [[ "$rc" == 5 ]]; then echo "!! pytest collected no tests for: $*" >&2; fi
  return "$rc"
}

install_tools() {
  step "install: uv + locked venv, nginx, promtool, pgbouncer, chromium"
  ensure_python_env
  ensure_nginx
  command -v promtool >/dev/null 2>&1 || apt_install prometheus
  # tests/pgbouncer start their own PgBouncer (Debian installs it in /usr/sbin)
  command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]] || apt_install pgbouncer
  command -v chromium >/dev/null 2>&1 || apt_install chromium chromium-driver
  require_servers
}

lint() {
  step "lint: ruff, mypy"
  "$ROOT/.venv/bin/ruff" check . && "$ROOT/.venv/bin/ruff" format --check . >/dev/null &&
    "$ROOT/.venv/bin/mypy" services/servicekit/servicekit services/*/*_service
}

integration_tests() {
  step "unit + integration tests (real PostgreSQL, Redis, RabbitMQ)"
  PYTHON="$PY" bash scripts/db_setup.sh "$TEST_DATABASE_NAME" --fresh >/dev/null
  run_pytest -q -p no:cacheprovider services tests --ignore=tests/system
}

start_system() {
  step "start the whole system on test ports (scripts/run_local.sh up)"
  export RUN_DIR="$SYSTEM_RUN_DIR" DB_NAME="moviebooking_test_system" DB_FRESH=1
  export GATEWAY_PORT=18080 AUTH_PORT=18001 MOVIE_PORT=18002 BOOKING_PORT=18003
  export PAYMENT_PORT=18004 NOTIFICATION_PORT=18005 SMTP_PORT=11025 BOOKING_REPLICAS=2
  export EVENTS_EXCHANGE="test_system.booking_events" QUEUE_PREFIX="test_system." REDIS_PREFIX="test:system:"
  export AUTH_TOKEN_RATE="100r/s" AUTH_TOKEN_BURST=200
  # Every test client shares 127.0.0.1: the per-address login throttle would block them all
  # (the per-account one stays on and is tested; the per-address one has its own test).
  # A payment stranded mid-request is resolved by the reconciler within a test's patience.
  export EXTRA_SERVICE_ENV="LOGIN_MAX_FAILURES_PER_IP=1000000 IDEMPOTENCY_LOCK_SECONDS=10 RECONCILER_INTERVAL_SECONDS=2"
  rm -rf "$SYSTEM_RUN_DIR/mail"
  bash scripts/run_local.sh down >/dev/null 2>&1 || true
  bash scripts/run_local.sh up
}

stop_system() {
  RUN_DIR="$SYSTEM_RUN_DIR" bash scripts/run_local.sh down >/dev/null 2>&1 || true
}

check_nothing_left() {
  # `run_local.sh down` must leave no process of the system behind: every process
  # group the runner started (services, mail catcher) and nginx must be gone.
  step "run_local.sh down left nothing running"
  local groups nginx_pid left=""
  groups="$(cat "$SYSTEM_RUN_DIR"/pids/*.pid 2>/dev/null || true)"
  nginx_pid="$(cat "$SYSTEM_RUN_DIR/nginx.pid" 2>/dev/null || true)"
  stop_system
  trap - EXIT
  for pgid in $groups; do left+="$(pgrep -g "$pgid" || true) "; done
  pid_alive "$nginx_pid" && left+="$nginx_pid"
  if [[ -n "${left// /}" ]]; then echo "!! still running after down: $left"; return 1; fi
  echo "nothing left"
}

system_tests() {
  start_system
  trap stop_system EXIT
  export GATEWAY_URL="http://127.0.0.1:18080" SYSTEM_RUN_DIR MAIL_DIR="$SYSTEM_RUN_DIR/mail"
  export SERVICE_URLS="http://127.0.0.1:18001,http://127.0.0.1:18002,http://127.0.0.1:18003,http://127.0.0.1:18004,http://127.0.0.1:18005"
  step "system tests through the NGINX gateway"
  run_pytest -q -p no:cacheprovider -m system tests/system || FAILED+=("system tests")
  if [[ -x scripts/e2e_test.sh ]]; then
    step "end-to-end script (scripts/e2e_test.sh)"
    BASE_URL="$GATEWAY_URL" MAIL_DIR="$MAIL_DIR" bash scripts/e2e_test.sh || FAILED+=("e2e script")
  fi
  check_nothing_left || FAILED+=("leftover processes")
}

chaos_run() {
  # A private HA topology on ports 26000-26999, five node failures under load, the books
  # checked after each (a few minutes; docs/operations.md, "chaos.sh").
  step "chaos: lose any one node, lose nothing (scripts/chaos.sh)"
  bash scripts/chaos.sh
}

install_tools
lint || FAILED+=("lint")
integration_tests || FAILED+=("unit + integration tests")
if [[ "$FAST" == 0 ]]; then
  system_tests
  chaos_run || FAILED+=("chaos")
fi

if ((${#FAILED[@]})); then
  printf '\n!! FAILED: %s\n' "${FAILED[*]}" >&2
  exit 1
fi
printf '\nall test stages passed\n'
