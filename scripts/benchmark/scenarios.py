"""The scenarios: each builds its jobs, runs them through ``load.run`` and returns its figures.

Every scenario is bounded twice: by a number of jobs and by ``max_seconds``.
Bookings made by a scenario are cancelled afterwards (untimed), so each user's
limit of unpaid holds is free again for the next one and no seats stay held.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from load import Job, Outcome, Plan, Result, run
from report import Figures, figures, say


@dataclass
class Bench:
    base_url: str
    tokens: list[str]
    processes: int
    max_seconds: float
    run_id: str = ""
    booked: list[Outcome] = field(default_factory=list)  # every 201 booking of the run
    anomalies: list[str] = field(default_factory=list)  # races without exactly one winner
    settle: Callable[[], None] = lambda: None  # waits for the system to be quiet (settle.py)

    def plan(self, jobs: list[Job], concurrency: int) -> Plan:
        return Plan(self.base_url, jobs, concurrency, self.max_seconds, self.tokens, self.processes)


def reads(bench: Bench, name: str, path: str, requests: int, concurrency: int, gzip: bool = False) -> Figures:
    """GETs of one path (anonymous) by ``concurrency`` clients (accepting gzip, like a browser, if asked)."""
    result = run(bench.plan([Job("get", path, gzip=gzip)] * requests, concurrency))
    return figures(name, concurrency, result, {200})


def distinct_bookings(
    bench: Bench, name: str, showtime_id: str, seats: list[str], bookings: int, concurrency: int
) -> Figures:
    """``bookings`` bookings of two seats each, no two touching the same seat, users round-robin."""
    pairs = [tuple(seats[i : i + 2]) for i in range(0, len(seats) - 1, 2)][:bookings]
    jobs = [
        Job("book", user=i % len(bench.tokens), showtime_id=showtime_id, seats=p) for i, p in enumerate(pairs)
    ]
    result = run(bench.plan(jobs, concurrency))
    _keep(bench, result.outcomes)
    shown = figures(name, concurrency, result, {201}, note=_conflicts(result.outcomes))
    asyncio.run(cancel(bench, result.outcomes))
    return shown


def race(bench: Bench, showtime_id: str, seats: list[str], racers: int, rounds: int) -> Figures:
    """``rounds`` races of ``racers`` users for the same two seats; each must have exactly one winner."""
    outcomes: list[Outcome] = []
    broken: list[str] = []
    wall = 0.0
    for index in range(rounds):
        pair = tuple(seats[2 * index : 2 * index + 2])
        jobs = [Job("book", user=i, showtime_id=showtime_id, seats=pair) for i in range(racers)]
        result = run(bench.plan(jobs, racers))
        winners = Counter(outcome.status for outcome in result.outcomes)
        if winners != {201: 1, 409: racers - 1}:
            broken.append(f"race {index + 1} for {pair}: {dict(winners)} (want one 201, {racers - 1} x 409)")
        outcomes += result.outcomes
        wall += result.wall
        _keep(bench, result.outcomes)
        asyncio.run(cancel(bench, result.outcomes))
    shown = figures(f"race: {racers} users for 2 seats x{rounds}", racers, Result(outcomes, wall), {201, 409})
    shown.note = f"{rounds - len(broken)}/{rounds} races with exactly one winner"
    bench.anomalies += broken
    return shown


def book_and_pay(
    bench: Bench, name: str, showtime_id: str, seats: list[str], flows: int, concurrency: int
) -> tuple[Figures, Result]:
    """Book two seats then pay for them (card 4242...), one flow per job; latency is the whole flow."""
    pairs = [tuple(seats[i : i + 2]) for i in range(0, len(seats) - 1, 2)][:flows]
    jobs = [
        Job("book_pay", user=i % len(bench.tokens), showtime_id=showtime_id, seats=p)
        for i, p in enumerate(pairs)
    ]
    result = run(bench.plan(jobs, concurrency))
    _keep(bench, result.outcomes)
    paid = sum(1 for outcome in result.outcomes if outcome.payment_id)
    shown = figures(name, concurrency, result, {201}, note=f"{paid} paid")
    asyncio.run(cancel(bench, result.outcomes))  # holds whose payment failed
    return shown, result


def _keep(bench: Bench, outcomes: list[Outcome]) -> None:
    bench.booked += [outcome for outcome in outcomes if outcome.booking_id]


def _conflicts(outcomes: list[Outcome]) -> str:
    conflicts = sum(1 for outcome in outcomes if outcome.status == 409)
    return f"409 rate {100 * conflicts / max(1, len(outcomes)):.1f}%"


async def cancel(bench: Bench, outcomes: list[Outcome]) -> None:
    """Cancel this scenario's unpaid bookings (untimed clean-up)."""
    unpaid = [outcome for outcome in outcomes if outcome.booking_id and not outcome.payment_id]
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=bench.base_url, timeout=30) as api:

        async def cancel_one(outcome: Outcome, user: int) -> None:
            async with gate:
                path = f"/api/bookings/bookings/{outcome.booking_id}/cancel"
                await api.post(path, headers={"Authorization": f"Bearer {bench.tokens[user]}"})

        await asyncio.gather(*(cancel_one(outcome, outcome.user) for outcome in unpaid))
    if unpaid:
        say(f"  (cancelled {len(unpaid)} unpaid bookings)")
