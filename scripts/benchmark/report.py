"""Figures of a scenario (requests/s, latency percentiles, error rate) and the printed tables."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from load import Result


@dataclass
class Figures:
    scenario: str
    concurrency: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    error_rate: float  # answers outside the expected statuses, transport errors included
    statuses: dict[int, int]
    ratio: float | None = None  # rps / gateway /health rps of the same run
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def figures(scenario: str, concurrency: int, result: Result, expected: set[int], note: str = "") -> Figures:
    """Summarise one scenario's outcomes; statuses outside ``expected`` count as errors."""
    latencies = sorted(outcome.latency for outcome in result.outcomes)
    statuses = Counter(outcome.status for outcome in result.outcomes)
    count = len(result.outcomes)
    errors = sum(n for status, n in statuses.items() if status not in expected)
    return Figures(
        scenario=scenario,
        concurrency=concurrency,
        requests=count,
        rps=count / result.wall if result.wall > 0 else 0.0,
        p50_ms=1000 * percentile(latencies, 0.50),
        p99_ms=1000 * percentile(latencies, 0.99),
        max_ms=1000 * (latencies[-1] if latencies else 0.0),
        error_rate=errors / count if count else 1.0,
        statuses=dict(sorted(statuses.items())),
        note=note,
    )


def print_table(rows: list[Figures]) -> None:
    say(
        f"{'scenario':<44} {'conc':>4} {'reqs':>6} {'req/s':>8} {'x /health':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'err %':>6}  statuses / note"
    )
    for row in rows:
        ratio = f"{row.ratio:.3f}" if row.ratio is not None else "-"
        statuses = " ".join(f"{status}:{n}" for status, n in row.statuses.items())
        say(
            f"{row.scenario:<44} {row.concurrency:>4} {row.requests:>6} {row.rps:>8.1f} {ratio:>9} "
            f"{row.p50_ms:>7.1f} {row.p99_ms:>7.1f} {row.max_ms:>7.1f} {100 * row.error_rate:>6.2f}  "
            f"{statuses} {row.note}".rstrip()
        )


def print_targets(title: str, targets: list[tuple[str, bool, str]]) -> None:
    say(f"\nTargets ({title}):")
    for name, met, detail in targets:
        say(f"  {'met    ' if met else 'NOT MET'}  {name}: {detail}")
