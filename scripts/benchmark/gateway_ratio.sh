#!/usr/bin/env bash
# The seat-map target of issue 3 measured with wrk instead of the benchmark's Python client:
# seat-map reads/s against the gateway's own /health, in alternating runs on one machine.
#
#   scripts/benchmark/gateway_ratio.sh GATEWAY_URL SHOWTIME_ID [pairs]
#
# Each pair is a 3 s wrk run of /health, then one of the showtime's seat map (64
# connections, 2 threads, 127.0.0.1 only). It prints every run, then the ratio of the
# medians, once plain and once with Accept-Encoding: gzip (as browsers ask). The Python
# client of scripts/benchmark.sh tops out near 20,000 req/s here, so it compares the
# client's cost of reading a 10 kB body with a 40-byte one as much as the gateway's work;
# wrk needs less of the machine's two cores. Needs wrk (apt-get install -y wrk).
set -euo pipefail

url=${1:?gateway URL, e.g. http://127.0.0.1:8080}
showtime=${2:?showtime id}
pairs=${3:-5}
case $url in
  http://127.0.0.1:* | http://localhost:*) ;;
  *) echo "gateway_ratio.sh: load goes to 127.0.0.1 only, not $url" >&2; exit 2 ;;
esac
command -v wrk >/dev/null || { echo "gateway_ratio.sh: wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }

rps() { wrk -t2 -c64 -d3s "$@" | awk '/^Requests\/sec/ {print $2}'; }

measure() {  # $1: label; the rest: extra wrk arguments for the seat-map run
  local label=$1
  shift
  for _ in $(seq "$pairs"); do
    echo "$(rps "$url/health") $(rps "$@" "$url/api/movies/showtimes/$showtime/seats")"
  done | python3 -c '
import statistics, sys
label = sys.argv[1]
runs = [tuple(map(float, line.split())) for line in sys.stdin]
health, seat_map = [h for h, _ in runs], [m for _, m in runs]
print(f"{label}: /health {[round(h) for h in health]}  seat map {[round(m) for m in seat_map]}")
print(f"{label}: seat map / health, ratio of medians {statistics.median(seat_map) / statistics.median(health):.3f}")
' "$label"
}

measure plain
measure gzip -H "Accept-Encoding: gzip"
