#!/usr/bin/env bash
# Lose any one node, lose nothing: start a private HA topology (PostgreSQL primary + synchronous
# standby, Redis master + replica + 3 sentinels, a 3-node RabbitMQ cluster; the five services with
# booking and payment as two replicas each, the mail catcher and the NGINX gateway), run five
# failures under a steady purchase load, check the books after each, tear everything down.
#
#   scripts/chaos.sh [--only N...] [--port-base 26000]
#
# Every port is the base + a fixed offset (26000-26999 by default); nothing touches the
# machine's shared PostgreSQL, Redis or RabbitMQ. The last line printed is one JSON object:
#   {"scenarios": N, "passed": N, "lost_confirmed_bookings": 0, "double_sold_seats": 0,
#    "double_charges": 0, "lost_mails": 0, "max_unavailable_s": S}
# Exit 1 when a scenario failed or anything was lost or doubled. See docs/operations.md, "chaos.sh".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

require_binaries() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || missing+=(rabbitmq-server)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  if ((${#missing[@]})); then
    echo "installing ${missing[*]} (apt-get)" >&2
    apt_install "${missing[@]}"
  fi
}

kill_leftovers() {
  # The Python run tears down what it started; this is for a run that was killed before it could:
  # every process group it recorded, the services' groups and NGINX, the PostgreSQL postmasters.
  local pid pidfile
  for pid in $(cat "$RUN/pgids" 2>/dev/null); do kill -KILL -- "-$pid" 2>/dev/null || true; done
  for pidfile in "$RUN"/system/pids/*.pid "$RUN"/system/nginx.pid; do
    [[ -f "$pidfile" ]] && { kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null || kill -KILL "$(cat "$pidfile")" 2>/dev/null || true; }
  done
  for pidfile in "$RUN"/pg-*/*/postmaster.pid; do
    [[ -f "$pidfile" ]] || continue
    pid="$(head -n 1 "$pidfile")"
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
}

cleanup() {
  local status=$? kept
  kill_leftovers >&2
  if [[ "$status" != 0 ]]; then
    # A failed run's logs (every node's and service's) outlive the run folder, for the post-mortem.
    kept="$ROOT/var/chaos-failed-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$kept"
    (cd "$RUN" && find . \( -name '*.log' -o -name index.jsonl \) -exec cp --parents {} "$kept" \;) || true
    echo "chaos: the failed run's logs are in $kept" >&2
  fi
  rm -rf "$RUN"
}

ensure_python_env
ensure_nginx
require_binaries
RUN="$(mktemp -d /tmp/mb-chaos-XXXXXX)"
chmod 755 "$RUN"  # PostgreSQL runs as the postgres user, in a folder inside this one
trap cleanup EXIT
PYTHONPATH="$ROOT/scripts:$ROOT/scripts/benchmark" "$PY" -m chaos --dir "$RUN" "$@" &
run=$!
# Ctrl-C or a TERM (a CI time-out) reach this shell only (a background job ignores SIGINT): the
# run is told to stop, tears down what it started and prints its JSON line, then the trap runs.
trap 'kill -TERM "$run" 2>/dev/null || true' INT TERM
status=0
wait "$run" || status=$?
while kill -0 "$run" 2>/dev/null; do  # a signal ended the wait, not the run
  status=0
  wait "$run" || status=$?
done
exit "$status"
