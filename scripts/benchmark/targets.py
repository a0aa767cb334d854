"""The targets a run measured, each as (name, met, figure): issues 3 and 4, and issue 16's purchase."""

from __future__ import annotations

from purchase import FlowRun, Lags, cpu_per_purchase
from report import Figures

Target = tuple[str, bool, str]


def _share_of_health(name: str, figure: Figures, health: Figures, share: float) -> Target:
    ratio = figure.rps / health.rps
    return name, ratio >= share, f"{figure.rps:.0f} / {health.rps:.0f} = {ratio:.3f}"


def gateway_targets(found: dict[str, Figures], memory: dict[str, int]) -> list[Target]:
    """The targets of issues 3 and 4 that this run measured."""
    health = found["health"]
    services = {name: rss for name, rss in memory.items() if name not in ("mail", "gateway (nginx)")}
    biggest = max(services.items(), key=lambda item: item[1]) if services else ("-", 0)
    shown: list[Target] = []
    if distinct := found.get("distinct"):
        shown.append(_share_of_health("bookings/s >= 0.25 x gateway /health", distinct, health, 0.25))
        p99 = distinct.p99_ms
        shown.append((f"booking p99 < 50 ms at {distinct.concurrency} clients", p99 < 50, f"{p99:.1f} ms"))
    if race := found.get("race"):
        shown.append(("200-user race p99 < 200 ms", race.p99_ms < 200, f"{race.p99_ms:.1f} ms"))
    if seat_map := found.get("seat_map"):
        shown.append(_share_of_health("seat map >= 0.5 x gateway /health", seat_map, health, 0.5))
    for suffix, how in (("gz", "gzip, as browsers ask"), ("", "uncompressed")):
        small, large = found.get(f"map100{suffix}"), found.get(f"map10000{suffix}")
        if small and large:
            times = large.p50_ms / max(small.p50_ms, 1e-9)
            detail = f"{large.p50_ms:.1f} ms vs {small.p50_ms:.1f} ms = {times:.1f}x"
            shown.append((f"10k-seat map < 5 x 100-seat map (p50, {how})", times < 5, detail))
    largest = f"largest {biggest[0]} {biggest[1] / 2**20:.0f} MB"
    shown.append(("every service < 200 MB RSS", biggest[1] < 200 * 2**20, largest))
    return shown


def purchase_targets(found: dict[str, Figures], runs: dict[int, FlowRun]) -> list[Target]:
    """Issue 16's targets, as far as this run measured them (ratios to this run's yardstick)."""
    yardstick = found.get("yardstick")
    full, few = runs.get(max(runs, default=0)), runs.get(min(runs, default=0))
    shown: list[Target] = []
    if full is not None:
        total, raw = cpu_per_purchase(full)
        detail = f"{total:.1f} ms ({raw:.1f} ms counting the shared servers' idle rate too)"
        if not full.watched.samples:
            detail += ", PostgreSQL backends not counted"
        shown.append(("CPU per purchase, the system's processes <= 15 ms", total <= 15, detail))
    if full is not None and yardstick is not None:
        ratio = full.purchases_per_second / yardstick.rps
        detail = f"{full.purchases_per_second:.1f} / {yardstick.rps:.0f} = {ratio:.3f}"
        shown.append((f"purchases/s / yardstick >= 0.1, {_clients(full)}", ratio >= 0.1, detail))
    if full is not None:
        p99 = full.figures.p99_ms / 1000
        shown.append((f"book+pay p99 < 1 s, {_clients(full)}", p99 < 1, f"{p99:.2f} s"))
        shown += _lag_target("pay 201 -> confirmed p99 < 1 s", full, full.confirmed, 1.0)
    if few is not None and few is not full:
        shown += _lag_target("pay 201 -> confirmed p99 < 250 ms", few, few.confirmed, 0.25)
    if full is not None:
        shown += _lag_target("pay 201 -> tickets mail p99 < 3 s", full, full.mailed, 3.0)
    if (distinct := found.get("distinct")) and yardstick is not None:
        ratio = distinct.rps / yardstick.rps
        detail = f"{distinct.rps:.0f} / {yardstick.rps:.0f} = {ratio:.3f}"
        shown.append((f"bookings/s / yardstick >= 0.7, {distinct.concurrency} clients", ratio >= 0.7, detail))
    if runs and any(run.watched.samples for run in runs.values()):
        held = max(run.watched.max_held for run in runs.values())
        busy = max(run.watched.max_busy for run in runs.values())
        detail = f"at most {held} held ({busy} not idle), pg_stat_activity every 100 ms"
        shown.append(("PostgreSQL connections held by the stack <= 40", held <= 40, detail))
    return shown


def _clients(run: FlowRun) -> str:
    return f"{run.figures.concurrency} clients"


def _lag_target(name: str, run: FlowRun, lags: Lags, limit: float) -> list[Target]:
    """The line of one lag target; none when it was not measured (no database, no purchase)."""
    measured = len(lags.seconds) + lags.missing
    if not measured:
        return []
    p99 = lags.p(0.99)
    shown = "never" if p99 == float("inf") else f"{p99 * 1000:.0f} ms"
    return [(f"{name}, {_clients(run)}", p99 < limit, f"{shown} ({len(lags.seconds)} of {measured})")]
