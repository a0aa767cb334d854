"""The purchase of issue 16: book -> pay flows, then how long until the booking is ``confirmed``
and the tickets mail is in the catcher, the PostgreSQL connections held meanwhile, and the CPU
every process of the stack spent per purchase.

- **pay 201 -> confirmed** is read from the database, not polled over HTTP: the confirming
  statement sets ``booking.bookings.updated_at = now()``, and nothing else touches a paid
  booking afterwards, so ``updated_at`` minus the client's wall-clock time of the 201 (same
  machine, same clock) is the lag. Polling 64 flows every 10-20 ms would add 3,000-6,000
  GETs a second to a system doing tens of purchases a second, and round the lag up to the
  polling step. ``now()`` is the start of the confirming transaction, so the figure is early
  by that transaction's length (a few ms); a booking confirmed before the client read its
  201 counts 0.
- **pay 201 -> tickets mail**: the mail catcher's ``index.jsonl`` (``received_at``, subject
  ``Your tickets: ... (booking XXXXXXXX)``, the booking id's first 8 hex digits); only lines
  appended since the scenario started are read. A booking with two tickets mails is reported.
- **CPU**: ``stack.py`` snapshots before the load and after its aftermath is done (every
  booking confirmed and mailed, outboxes published, queues empty), so work the load left
  behind is in the figure; ``pgwatch.py`` adds the database backends.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg
import stack
from load import Outcome
from pgwatch import PgWatch, Watched
from report import Figures, percentile, say
from scenarios import Bench, book_and_pay

TICKETS_SUBJECT = re.compile(r"^Your tickets:.*\(booking ([0-9A-F]{8})\)\s*$")
CONFIRMED_AT = """
SELECT id::text AS id, status, extract(epoch FROM updated_at)::float8 AS at
FROM booking.bookings WHERE id = ANY($1::uuid[])
"""
# Where the lag to `confirmed` accrues, per payment.completed: payment's relay (commit ->
# published) and the broker with booking's consumer (published -> booking's dedupe record).
# All three times are PostgreSQL's now() (one clock); each is its transaction's start.
EVENT_STAGES = """
SELECT extract(epoch FROM o.published_at - o.created_at)::float8 AS relayed,
       extract(epoch FROM p.processed_at - o.published_at)::float8 AS consumed
FROM payment.outbox o
JOIN booking.processed_events p ON p.event_id = o.event_id AND p.consumer = 'booking-service.events'
WHERE o.event_type = 'payment.completed' AND o.payload->'data'->>'booking_id' = ANY($1::text[])
"""
AFTERMATH_SECONDS = 120.0  # bound of waiting for confirmations and for mails


@dataclass
class Where:
    """The instance under test, as far as the purchase figures need it."""

    run_dir: Path
    dsn: str | None  # the system's database (None: lags, connections and backends not measured)


@dataclass
class Lags:
    seconds: list[float] = field(default_factory=list)  # one per purchase that got there
    missing: int = 0  # purchases that did not get there within the bound

    def p(self, fraction: float) -> float:
        """Percentile in seconds; a purchase that never got there counts as infinitely late."""
        values = sorted(self.seconds) + [float("inf")] * self.missing
        return percentile(values, fraction)


@dataclass
class FlowRun:
    figures: Figures
    purchases: int  # payments answered 201
    purchases_per_second: float
    confirmed: Lags
    mailed: Lags
    relayed: Lags  # payment.completed: payment's commit -> published
    consumed: Lags  # payment.completed: published -> booking's consumer began its transaction
    duplicate_mails: list[str]  # references with more than one tickets mail
    watched: Watched
    window_seconds: float = 0.0  # the CPU window: load start to aftermath done
    cpu: dict[str, float] = field(default_factory=dict)  # group -> CPU seconds in the window
    idle: dict[str, float] = field(default_factory=dict)  # shared group -> CPU s / s, idle, before and after
    shared: set[str] = field(default_factory=set)


def measure_flow(
    bench: Bench, where: Where, showtime_id: str, seats: list[str], flows: int, clients: int
) -> FlowRun:
    """One book -> pay scenario with everything issue 16 asks of it."""
    bench.settle()
    mail_index = where.run_dir / "mail" / "index.jsonl"
    mail_offset = mail_index.stat().st_size if mail_index.exists() else 0
    groups = stack.stack_groups(where.run_dir)
    idle = stack.idle_rates(groups, 2.0)
    watch = PgWatch(where.dsn) if where.dsn else None
    if watch:
        watch.start()
    before, started = stack.snapshot(groups), time.monotonic()
    name = f"book -> pay flow, {clients} clients"
    shown, result = book_and_pay(bench, name, showtime_id, seats, flows, clients)
    paid = [outcome for outcome in result.outcomes if outcome.payment_id and outcome.paid_at]
    confirmed = asyncio.run(confirmation_lags(where.dsn, paid)) if where.dsn else Lags()
    relayed, consumed = asyncio.run(event_stages(where.dsn, paid)) if where.dsn else (Lags(), Lags())
    mailed, twice = mail_lags(mail_index, mail_offset, paid)
    bench.settle()
    after, window = stack.snapshot(groups), time.monotonic() - started
    watched = watch.stop() if watch else Watched()
    idle = _mean(idle, stack.idle_rates(groups, 2.0))
    run = FlowRun(
        figures=shown,
        purchases=len(paid),
        purchases_per_second=len(paid) / result.wall if result.wall > 0 else 0.0,
        confirmed=confirmed,
        mailed=mailed,
        relayed=relayed,
        consumed=consumed,
        duplicate_mails=twice,
        watched=watched,
        window_seconds=window,
        cpu={name: after[name] - before[name] for name in before} | _backends(watched),
        idle=idle,
        shared={group.name for group in groups if group.shared},
    )
    say(f"  {shown.scenario}: {run.purchases_per_second:.1f} purchases/s, p99 {shown.p99_ms:.0f} ms")
    return run


def _mean(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: (rate + after.get(name, rate)) / 2 for name, rate in before.items()}


def _backends(watched: Watched) -> dict[str, float]:
    return {f"postgres backends: {name}": cpu for name, cpu in watched.backend_cpu.items()}


async def confirmation_lags(dsn: str, paid: list[Outcome]) -> Lags:
    """Seconds from each payment's 201 to its booking's ``updated_at`` once ``confirmed``."""
    wanted = {outcome.booking_id: outcome.paid_at for outcome in paid if outcome.booking_id}
    found: dict[str, float] = {}
    deadline = time.monotonic() + AFTERMATH_SECONDS
    connection = await asyncpg.connect(dsn)
    try:
        while len(found) < len(wanted) and time.monotonic() < deadline:
            rows = await connection.fetch(CONFIRMED_AT, [i for i in wanted if i not in found])
            found |= {row["id"]: row["at"] for row in rows if row["status"] == "confirmed"}
            if len(found) < len(wanted):
                await asyncio.sleep(0.25)
    finally:
        await connection.close()
    lags = [max(0.0, found[booking] - paid_at) for booking, paid_at in wanted.items() if booking in found]
    return Lags(lags, len(wanted) - len(found))


async def event_stages(dsn: str, paid: list[Outcome]) -> tuple[Lags, Lags]:
    """The two hops of each ``payment.completed`` (read once its booking is confirmed)."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(EVENT_STAGES, [o.booking_id for o in paid if o.booking_id])
    finally:
        await connection.close()
    return Lags([row["relayed"] for row in rows]), Lags([row["consumed"] for row in rows])


def reference(booking_id: str) -> str:
    """The booking reference notification prints (the id's first 8 hex digits, upper case)."""
    return booking_id.replace("-", "")[:8].upper()


def mail_lags(index: Path, offset: int, paid: list[Outcome]) -> tuple[Lags, list[str]]:
    """Seconds from each payment's 201 to its tickets mail, and references mailed twice."""
    wanted = {reference(o.booking_id): o.paid_at for o in paid if o.booking_id}
    received: dict[str, list[float]] = {}
    deadline = time.monotonic() + AFTERMATH_SECONDS
    while wanted.keys() - received.keys() and time.monotonic() < deadline:
        received = tickets_mails(index, offset, wanted.keys())
        if wanted.keys() - received.keys():
            time.sleep(0.25)
    lags = [max(0.0, min(received[ref]) - paid_at) for ref, paid_at in wanted.items() if ref in received]
    twice = sorted(ref for ref, times in received.items() if len(times) > 1)
    return Lags(lags, len(wanted) - len(lags)), twice


def tickets_mails(index: Path, offset: int, references: Collection[str]) -> dict[str, list[float]]:
    """Reception times (epoch seconds) of the tickets mails of ``references`` after ``offset``."""
    if not index.exists():
        return {}
    with index.open("rb") as lines:
        lines.seek(offset)
        text = lines.read().decode(errors="replace")
    found: dict[str, list[float]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:  # a line being written right now
            continue
        match = TICKETS_SUBJECT.match(entry.get("subject", ""))
        if match and match.group(1) in references:
            at = datetime.fromisoformat(entry["received_at"]).timestamp()
            found.setdefault(match.group(1), []).append(at)
    return found


def cpu_rows(run: FlowRun) -> list[tuple[str, float, float]]:
    """(process, CPU seconds in the window, the same less its idle rate when shared), busiest first."""
    rows = []
    for name, used in run.cpu.items():
        background = run.idle.get(name, 0.0) * run.window_seconds if name in run.shared else 0.0
        rows.append((name, used, max(0.0, used - background)))
    return sorted(rows, key=lambda row: -row[1])


def cpu_per_purchase(run: FlowRun) -> tuple[float, float]:
    """ms per purchase of the whole stack: (shared servers less their idle rate, everything as read)."""
    rows, purchases = cpu_rows(run), max(1, run.purchases)
    return 1000 * sum(row[2] for row in rows) / purchases, 1000 * sum(row[1] for row in rows) / purchases
