"""Printing the purchase figures of issue 16 (purchase.py measures them) and their JSON form."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from purchase import FlowRun, Lags, cpu_per_purchase, cpu_rows
from report import Figures, say


def _ms(lags: Lags, fraction: float) -> str:
    """A percentile in ms; "-" when not measured, "never" past the bound."""
    if not lags.seconds and not lags.missing:
        return "-"
    value = lags.p(fraction)
    return "never" if value == float("inf") else f"{1000 * value:.0f}"


def print_flows(runs: dict[int, FlowRun], yardstick: Figures | None) -> None:
    """One line per client count: throughput, the flow's latency, confirmation and mail lags."""
    measured = (
        f"{yardstick.rps:.0f} req/s at {yardstick.concurrency} clients" if yardstick else "not measured"
    )
    say(f"\nThe purchase (issue 16); yardstick {measured}:")
    say(
        f"  {'clients':>7} {'flows':>5} {'paid/s':>7} {'x yard':>7} {'flow p50/p99 ms':>16} "
        f"{'-> confirmed p50/p99 ms':>24} {'-> mail p50/p99 ms':>19} {'pg held/busy':>12}"
    )
    for clients, run in sorted(runs.items(), reverse=True):
        ratio = f"{run.purchases_per_second / yardstick.rps:.3f}" if yardstick else "-"
        flow = f"{run.figures.p50_ms:.0f} / {run.figures.p99_ms:.0f}"
        confirmed = f"{_ms(run.confirmed, 0.5)} / {_ms(run.confirmed, 0.99)}" + _missing(run.confirmed)
        mailed = f"{_ms(run.mailed, 0.5)} / {_ms(run.mailed, 0.99)}" + _missing(run.mailed)
        held = f"{run.watched.max_held} / {run.watched.max_busy}" if run.watched.samples else "-"
        say(
            f"  {clients:>7} {run.figures.requests:>5} {run.purchases_per_second:>7.1f} {ratio:>7} "
            f"{flow:>16} {confirmed:>24} {mailed:>19} {held:>12}"
        )
        say(
            f"  {'':>7} payment.completed p50/p99 ms: payment's relay {_ms(run.relayed, 0.5)} / "
            f"{_ms(run.relayed, 0.99)}, broker + booking's consumer {_ms(run.consumed, 0.5)} / "
            f"{_ms(run.consumed, 0.99)}"
        )
        for reference in run.duplicate_mails:
            say(f"  warning: booking {reference} got more than one tickets mail")


def _missing(lags: Lags) -> str:
    return f" ({lags.missing} never)" if lags.missing else ""


def print_connections(run: FlowRun) -> None:
    say(f"\nPostgreSQL connections of the stack, most at once ({run.figures.concurrency} clients):")
    for client, most in run.watched.max_by_client.items():
        say(f"  {client:<46} {most:>4}")
    say(f"  {'all of them (at the same instant)':<46} {run.watched.max_held:>4}")


def print_cpu(run: FlowRun) -> None:
    """CPU per process, per purchase, over the load and its aftermath."""
    say(
        f"\nCPU per purchase, {run.figures.concurrency} clients: {run.purchases} purchases, "
        f"window {run.window_seconds:.1f} s (load + aftermath until settled)"
    )
    say(f"  {'process':<44} {'CPU s':>7} {'ms/purchase':>12} {'less idle':>10}")
    purchases = max(1, run.purchases)
    for name, used, less_idle in cpu_rows(run):
        label = f"{name} (shared)" if name in run.shared else name
        per_purchase, less = 1000 * used / purchases, 1000 * less_idle / purchases
        say(f"  {label:<44} {used:>7.2f} {per_purchase:>12.2f} {less:>10.2f}")
    total, raw = cpu_per_purchase(run)
    say(f"  {'the system (all of the above)':<44} {'':>7} {raw:>12.2f} {total:>10.2f}")
    if not run.watched.samples:
        say("  (PostgreSQL backends not counted: no --database to find them in pg_stat_activity)")
    idle = ", ".join(f"{name} {1000 * rate:.0f} ms/s" for name, rate in sorted(run.idle.items()))
    say(f"  (shared servers' idle rate, 2 s before and 2 s after the window, off in 'less idle': {idle})")


def as_json(runs: dict[int, FlowRun]) -> dict[str, Any]:
    return {
        str(clients): {
            **{k: v for k, v in asdict(run).items() if k != "shared"},
            "shared": sorted(run.shared),
            "confirmed_p50_p99_s": [run.confirmed.p(0.5), run.confirmed.p(0.99)],
            "mailed_p50_p99_s": [run.mailed.p(0.5), run.mailed.p(0.99)],
            "cpu_ms_per_purchase": cpu_per_purchase(run),
        }
        for clients, run in runs.items()
    }
