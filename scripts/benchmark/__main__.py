"""Load benchmark of a running Movie Booking system, through its NGINX gateway on 127.0.0.1.

    .venv/bin/python scripts/benchmark --run-dir var/bench --database moviebooking_bench
    (or: bash scripts/benchmark.sh, which fills these in from RUN_DIR and DB_NAME)

Scenarios (each bounded by a request count and --max-seconds): gateway /health, auth /health
through the gateway, catalog reads, seat-map reads, seat maps of 100 / 1,000 / 10,000 seats,
the yardstick (reference_endpoint.py's one-query-one-Redis-command endpoint, started here),
booking distinct seats with 64 clients, 200 users racing for 2 seats, book -> pay flows at 64
and at 8 clients (with the lag to `confirmed` and to the tickets mail, the PostgreSQL
connections held and the CPU per purchase of every process of the stack), and booking again
with 10k (and, with --million, 1M) more bookings in the database. Prints requests/s,
p50/p99/max latency, error rate and the ratio to gateway /health per scenario, then checks
that no seat was sold twice, no booking charged twice and no booking mailed its tickets twice
(exit 1 if one was), prints each service's resident memory, and which targets of issues 3, 4
and 16 are met. ``--only purchase`` runs issue 16's part (yardstick, distinct, flow).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit

import checks
import fixtures
import httpx
import purchase_report
import scenarios
import yardstick
from purchase import FlowRun, Where, measure_flow
from report import Figures, print_table, print_targets, say
from settle import wait_quiet
from targets import gateway_targets, purchase_targets

ROOT = Path(__file__).resolve().parents[2]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path(os.environ.get("RUN_DIR", "var/local")))
    parser.add_argument(
        "--base-url", default=os.environ.get("BASE_URL"), help="default: the run dir's gateway"
    )
    parser.add_argument(
        "--database", default=os.environ.get("DB_NAME"), help="for SQL checks and filler rows"
    )
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="server of --database")
    parser.add_argument("--amqp-url", help="the instance's broker (default: its instance.env)")
    parser.add_argument("--queue-prefix", help="its consumer queues' prefix (default: its instance.env)")
    parser.add_argument("--admin-password", default=os.environ.get("ADMIN_PASSWORD"))
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="client processes")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients of most scenarios")
    parser.add_argument("--users", type=int, default=200, help="registered users (the race needs this many)")
    parser.add_argument("--health-requests", type=int, default=20000)
    parser.add_argument("--read-requests", type=int, default=6000)
    parser.add_argument("--bookings", type=int, default=800, help="bookings of the distinct-seat scenario")
    parser.add_argument("--race-rounds", type=int, default=5)
    parser.add_argument("--flows", type=int, default=400, help="book -> pay flows at --clients")
    parser.add_argument("--few-clients", type=int, default=8, help="clients of the second flow scenario")
    parser.add_argument("--few-flows", type=int, default=200, help="flows at --few-clients (0: none)")
    parser.add_argument("--yardstick-requests", type=int, default=6000)
    parser.add_argument("--filler", type=int, default=10000, help="bookings rows to add before re-measuring")
    parser.add_argument("--million", action="store_true", help="also measure with 1M booking rows")
    parser.add_argument("--max-seconds", type=float, default=20.0, help="bound of each scenario")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=(*SCENARIOS, "purchase"),
        metavar="SCENARIO",
        help=f"run only these scenarios ({', '.join(SCENARIOS)}; purchase = {' '.join(PURCHASE)});"
        " gateway /health always runs",
    )
    return parser.parse_args()


def base_url(args: argparse.Namespace) -> str:
    url = args.base_url
    if not url:
        port_file = args.run_dir / "gateway.port"
        if not port_file.exists():
            sys.exit(f"no --base-url and no {port_file}: is the system running (scripts/run_local.sh up)?")
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
    if urlsplit(url).hostname not in LOCAL_HOSTS:
        sys.exit(f"refusing {url}: the benchmark runs against 127.0.0.1 only")
    return url.rstrip("/")


def instance_settings(run_dir: Path) -> dict[str, str]:
    """What scripts/run_local.sh wrote about the instance it started (empty if nothing)."""
    path = run_dir / "instance.env"
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return {name: value for name, _, value in (line.partition("=") for line in lines if "=" in line)}


def admin_password(args: argparse.Namespace) -> str:
    if args.admin_password:
        return str(args.admin_password)
    from auth_service.config import DEV_ADMIN_PASSWORD  # the runner's bootstrap admin

    return DEV_ADMIN_PASSWORD


async def prepare(args: argparse.Namespace, url: str, run_id: str) -> tuple[dict[str, str], dict, list[str]]:
    """Showtimes (by name), their seat ids, and the users' access tokens."""
    accounts = fixtures.load_accounts(args.run_dir / "benchmark-users.json", args.users)  # noqa: ASYNC240
    async with httpx.AsyncClient(base_url=url, timeout=120) as api:
        headers = await fixtures.admin_headers(api, admin_password(args))
        showtimes = await fixtures.create_programme(api, headers, run_id)
        seats = {name: await fixtures.seat_ids(api, showtime) for name, showtime in showtimes.items()}
        say(f"  showtimes ready ({len(showtimes)}); signing in {len(accounts)} users")
        try:
            tokens = await fixtures.users(api, accounts)
        finally:
            fixtures.save_accounts(args.run_dir / "benchmark-users.json", accounts)  # noqa: ASYNC240  (once)
    return showtimes, seats, tokens


SCENARIOS = (
    "health", "auth_health", "catalog", "seat_map", "maps", "yardstick", "distinct", "race", "flow", "rows",
)  # fmt: skip
PURCHASE = ("yardstick", "distinct", "flow")  # issue 16's figures


def wanted_scenarios(only: list[str] | None) -> set[str]:
    """``--only`` expanded (``purchase`` names issue 16's scenarios); every ratio needs /health."""
    chosen = set(only or SCENARIOS)
    if "purchase" in chosen:
        chosen = (chosen - {"purchase"}) | set(PURCHASE)
    return {"health", *chosen}


def measure(
    args: argparse.Namespace, bench: scenarios.Bench, showtimes: dict, seats: dict
) -> tuple[dict[str, Figures], dict[int, FlowRun]]:
    """The scenarios of ``--only`` (all by default), in order; the keys name them for the targets."""
    clients, reads_n = args.clients, args.read_requests
    wanted = wanted_scenarios(args.only)
    found: dict[str, Figures] = {}
    reads = [
        ("health", "gateway /health", "/health", args.health_requests),
        ("auth_health", "/api/auth/health (to auth)", "/api/auth/health", reads_n),
        ("catalog", "catalog: GET /api/movies/movies", "/api/movies/movies", reads_n),
        ("seat_map", "seat map (100 seats)", _map(showtimes, "map100"), reads_n),
    ]
    for name, title, path, requests in reads:
        if name in wanted:
            found[name] = timed(scenarios.reads, bench, title, path, requests, clients)
    for size, requests in ((100, 1000), (1000, 400), (10000, 100)) if "maps" in wanted else ():
        path = _map(showtimes, f"map{size}")
        found[f"map{size}"] = timed(
            scenarios.reads, bench, f"seat map, {size:,} seats, 8 clients", path, requests, 8
        )
        found[f"map{size}gz"] = timed(
            scenarios.reads, bench, f"seat map, {size:,} seats, 8 clients, gzip", path, requests, 8, True
        )
    if "yardstick" in wanted:
        bench.settle()
        found["yardstick"] = yardstick.measure(bench, args.yardstick_requests, clients)
        say(f"  {found['yardstick'].scenario}: {found['yardstick'].rps:.0f} req/s")
    if "distinct" in wanted:
        found["distinct"] = timed(
            scenarios.distinct_bookings,
            bench,
            f"book 2 distinct seats, {clients} clients",
            showtimes["distinct"],
            seats["distinct"],
            args.bookings,
            clients,
        )
    if "race" in wanted:
        found["race"] = timed(
            scenarios.race, bench, showtimes["race"], seats["race"], min(200, args.users), args.race_rounds
        )
    runs = flows(args, bench, showtimes["flow"], seats["flow"]) if "flow" in wanted else {}
    found |= {f"flow{n}": run.figures for n, run in runs.items()}
    if "rows" in wanted:
        found.update(with_filler_rows(args, bench, showtimes, seats))
    return found, runs


def flows(
    args: argparse.Namespace, bench: scenarios.Bench, showtime: str, seats: list[str]
) -> dict[int, FlowRun]:
    """book -> pay at --clients, then at --few-clients, each on seats of its own."""
    where = Where(args.run_dir, f"{args.pg}/{args.database}" if args.database else None)
    many, few = 2 * args.flows, 2 * args.few_flows
    runs = {args.clients: measure_flow(bench, where, showtime, seats[:many], args.flows, args.clients)}
    if args.few_flows > 0 and args.few_clients != args.clients:
        few_seats = seats[many : many + few]
        runs[args.few_clients] = measure_flow(
            bench, where, showtime, few_seats, args.few_flows, args.few_clients
        )
    return runs


def _map(showtimes: dict[str, str], name: str) -> str:
    return f"/api/movies/showtimes/{showtimes[name]}/seats"


def with_filler_rows(
    args: argparse.Namespace, bench: scenarios.Bench, showtimes: dict, seats: dict
) -> dict[str, Figures]:
    """Booking again after adding bookings rows to the database (needs --database)."""
    if not args.database or args.filler <= 0:
        return {}
    dsn = f"{args.pg}/{args.database}"
    found = {}
    for name, target in (("rows10k", args.filler), ("rows1m", 1_000_000 if args.million else 0)):
        if not target:
            continue
        present = asyncio.run(checks.booking_rows(dsn))
        if target > present:
            say(f"  adding {target - present:,} filler bookings (SQL, booking schema of {args.database})")
            asyncio.run(checks.add_filler_bookings(dsn, target - present, f"{bench.run_id}-{name}"))
        total = asyncio.run(checks.booking_rows(dsn))
        found[name] = timed(
            scenarios.distinct_bookings,
            bench,
            f"book 2 distinct seats, {total:,} rows in db",
            showtimes[name],
            seats[name],
            min(args.bookings, 400),
            args.clients,
        )
    return found


def timed(function, bench: scenarios.Bench, *arguments) -> Figures:  # noqa: ANN001  (any scenario)
    """Run one scenario once the previous one's events have all been handled."""
    bench.settle()
    started = time.monotonic()
    shown: Figures = function(bench, *arguments)
    elapsed = time.monotonic() - started
    say(f"  {shown.scenario}: {shown.rps:.0f} req/s, p99 {shown.p99_ms:.1f} ms ({elapsed:.0f} s)")
    return shown


def invariants(args: argparse.Namespace, bench: scenarios.Bench, runs: dict[int, FlowRun]) -> list[str]:
    """What broke: seats two 201s were given, tickets mailed twice, and (with --database) the SQL checks."""
    broken = [f"seat given to two bookings: {seat}" for seat in checks.client_side_double_sales(bench.booked)]
    broken += [f"tickets mailed twice: booking {ref}" for run in runs.values() for ref in run.duplicate_mails]
    if args.database:
        for name, rows in asyncio.run(checks.database_violations(f"{args.pg}/{args.database}")).items():
            broken += [f"{name}: {row}" for row in rows]
    return broken


def main() -> int:
    args = parse_args()
    url, run_id = base_url(args), uuid.uuid4().hex[:8]
    say(f"Benchmark {run_id} against {url} ({args.processes} client processes, {args.clients} clients)")
    showtimes, seats, tokens = asyncio.run(prepare(args, url, run_id))
    bench = scenarios.Bench(url, tokens, args.processes, args.max_seconds, run_id)
    instance = instance_settings(args.run_dir)
    amqp = args.amqp_url or instance.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    prefix = args.queue_prefix if args.queue_prefix is not None else instance.get("QUEUE_PREFIX", "")
    dsn = f"{args.pg}/{args.database}" if args.database else None
    bench.settle = lambda: wait_quiet(dsn, amqp, prefix)
    found, runs = measure(args, bench, showtimes, seats)
    for figure in found.values():
        figure.ratio = figure.rps / found["health"].rps
    say()
    print_table(list(found.values()))
    broken = invariants(args, bench, runs)
    memory = checks.resident_memory(args.run_dir)
    say("\nResident memory after the run (RSS, from /proc of the runner's pid files):")
    for name, rss in memory.items():
        say(f"  {name:<16} {rss / 2**20:7.1f} MB")
    print_purchase(found, runs)
    print_targets("issues 3 and 4", gateway_targets(found, memory))
    if "yardstick" in found or runs:
        print_targets("issue 16, the purchase", purchase_targets(found, runs))
    for anomaly in bench.anomalies:
        say(f"  warning: {anomaly}")
    say(
        f"\nInvariants: {'BROKEN' if broken else 'held'} "
        "(no seat sold twice, no booking charged twice, no tickets mailed twice)"
    )
    for line in broken:
        say(f"  {line}")
    if args.json:
        figures = {"figures": [asdict(f) for f in found.values()], "rss": memory}
        args.json.write_text(json.dumps(figures | {"purchase": purchase_report.as_json(runs)}, indent=1))
    return 1 if broken else 0


def print_purchase(found: dict[str, Figures], runs: dict[int, FlowRun]) -> None:
    if not runs:
        return
    purchase_report.print_flows(runs, found.get("yardstick"))
    full = runs[max(runs)]
    if full.watched.samples:
        purchase_report.print_connections(full)
    purchase_report.print_cpu(full)


if __name__ == "__main__":
    sys.exit(main())
