"""The load engine: a few client processes, each one uvloop loop with one connection per client.

The client shares the machine with the servers, so one Python process would be the
bottleneck long before NGINX is: a scenario's jobs are split over ``processes``
forked workers that start together at an agreed instant, and the figures are
computed over all of them (throughput = responses / wall time from that instant to
the last response). Each job is timed from the first byte sent to the last byte read.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import uvloop
from wire import Connection, WireError

CARD_OK = "4242424242424242"


@dataclass(frozen=True)
class Job:
    """One unit of work: a GET, a booking, or a booking followed by its payment."""

    kind: str  # "get" | "book" | "book_pay"
    path: str = ""
    user: int = -1  # index into Plan.tokens; -1 sends no token
    showtime_id: str = ""
    seats: tuple[str, ...] = ()
    gzip: bool = False  # send Accept-Encoding: gzip, as browsers do


@dataclass
class Outcome:
    latency: float  # seconds
    status: int  # the last HTTP status of the job; 0 = no answer (transport error, timeout)
    booking_id: str | None = None
    showtime_id: str = ""
    seats: tuple[str, ...] = ()
    payment_id: str | None = None
    user: int = -1
    paid_at: float = 0.0  # wall clock (time.time()) when the payment's 201 was read


@dataclass
class Plan:
    base_url: str
    jobs: list[Job]
    concurrency: int
    max_seconds: float
    tokens: list[str] = field(default_factory=list)
    processes: int = 2


@dataclass
class Result:
    outcomes: list[Outcome]
    wall: float  # seconds from the common start to the last response


def run(plan: Plan) -> Result:
    """Run the plan's jobs over its worker processes; blocks until all are done or time is up."""
    processes = max(1, min(plan.processes, plan.concurrency, len(plan.jobs)))
    start_at = time.time() + 0.5 + 0.02 * plan.concurrency  # time for every worker to open its connections
    shares = [
        (plan.base_url, plan.jobs[i::processes], _share(plan.concurrency, processes, i), plan.tokens)
        for i in range(processes)
    ]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        parts = list(pool.map(_worker, shares, [start_at] * processes, [plan.max_seconds] * processes))
    outcomes = [outcome for part, _, _ in parts for outcome in part]
    return Result(
        outcomes=outcomes, wall=max(end for _, _, end in parts) - min(begin for _, begin, _ in parts)
    )


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _worker(
    share: tuple[str, list[Job], int, list[str]], start_at: float, max_seconds: float
) -> tuple[list[Outcome], float, float]:
    base_url, jobs, concurrency, tokens = share
    return uvloop.run(_drive(base_url, jobs, concurrency, tokens, start_at, max_seconds))


async def _drive(
    base_url: str, jobs: list[Job], concurrency: int, tokens: list[str], start_at: float, max_seconds: float
) -> tuple[list[Outcome], float, float]:
    """Run ``jobs`` with ``concurrency`` loops from ``start_at``: (outcomes, actual start, end)."""
    connections = [Connection(base_url, timeout=15) for _ in range(concurrency)]
    await asyncio.gather(*(c.request("GET", "/health") for c in connections))  # open the connections
    await asyncio.sleep(max(0.0, start_at - time.time()))
    began = time.time()  # later than start_at when this worker was slow to get ready
    deadline = time.perf_counter() + max_seconds
    pending = iter(jobs)  # shared by the loops below (one thread: no lock needed)
    outcomes: list[Outcome] = []

    async def client_loop(connection: Connection) -> None:
        for job in pending:
            if time.perf_counter() > deadline:
                return
            outcomes.append(await _run_job(connection, job, tokens))

    try:
        await asyncio.gather(*(client_loop(c) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    return outcomes, began, time.time()


def _headers(tokens: list[str], user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[user]}"} if user >= 0 else {}


async def _run_job(connection: Connection, job: Job, tokens: list[str]) -> Outcome:
    started = time.perf_counter()
    try:
        if job.kind == "get":
            headers = _headers(tokens, job.user) | ({"Accept-Encoding": "gzip"} if job.gzip else {})
            answer = await connection.request("GET", job.path, headers)
            return Outcome(time.perf_counter() - started, answer.status)
        outcome = await book_seats(connection, job, tokens)
        if job.kind == "book_pay" and outcome.status == 201:
            outcome = await pay_booking(connection, outcome, tokens[job.user])
    except WireError:
        outcome = Outcome(0.0, 0)
    outcome.latency = time.perf_counter() - started
    return outcome


async def book_seats(connection: Connection, job: Job, tokens: list[str]) -> Outcome:
    body = {"showtime_id": job.showtime_id, "seat_ids": list(job.seats)}
    answer = await connection.request("POST", "/api/bookings/book", _headers(tokens, job.user), body)
    booking_id = answer.json()["id"] if answer.status == 201 else None
    return Outcome(0.0, answer.status, booking_id, job.showtime_id, job.seats, user=job.user)


async def pay_booking(connection: Connection, booked: Outcome, token: str) -> Outcome:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"bench-{booked.booking_id}"}
    body = {"booking_id": booked.booking_id, "payment_method": "credit_card", "card_number": CARD_OK}
    answer = await connection.request("POST", "/api/payments/process", headers, body)
    booked.status = answer.status
    booked.payment_id = answer.json().get("id") if answer.status == 201 else None
    booked.paid_at = time.time() if answer.status == 201 else 0.0
    return booked
