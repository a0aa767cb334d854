#!/usr/bin/env bash
# Load benchmark of a running system (scripts/run_local.sh up), through its gateway on 127.0.0.1.
#
#   RUN_DIR=var/bench DB_NAME=moviebooking_bench bash scripts/benchmark.sh [options]
#
# RUN_DIR [var/local]: the runner's folder (gateway port, pid files for the memory and CPU
# figures, the mail catcher's folder, the cached benchmark accounts); DB_NAME [moviebooking]: the
# system's database, read for the invariant checks, the time to `confirmed` and the connections
# held, and given filler booking rows (--filler, --million). Options are those of
#   .venv/bin/python scripts/benchmark --help
# `--only purchase` measures issue 16's purchase (yardstick, bookings, book -> pay at 64 and 8).
# Bounded: every scenario stops after its request count or --max-seconds (default 20 s).
# Exit 1 when an invariant broke (a seat sold twice, a booking charged twice, tickets mailed
# twice). See docs/benchmarks.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN_DIR="${RUN_DIR:-var/local}"
exec "$ROOT/.venv/bin/python" scripts/benchmark --run-dir "$RUN_DIR" --database "${DB_NAME:-moviebooking}" "$@"
