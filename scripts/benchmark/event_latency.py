"""Events from commit to handled: servicekit's outbox relay and consumer, on the real
PostgreSQL and RabbitMQ, in this one process (docs/benchmarks.md "Events: commit to handled").

    .venv/bin/python scripts/benchmark/event_latency.py --database mb_bench --rate 40 --writers 8

An app built by servicekit's own factory (``build_app`` + ``ServiceSpec``: the runtime's
sessionmaker, its outbox relay, an ``EventConsumer``) in a private schema of --database,
on its own exchange and queues. Writers commit one event per transaction (``add_event``),
open loop at --rate events/s (0: as fast as they can); the handler writes one row in the
consumer's transaction. Prints the latency from the writer's commit to the handler's commit
(p50 / p99 / max), events/s, this process's CPU time per event (``time.process_time``:
writers, relay and consumer together), the SQL statements and transactions it sent per
event (these do not move with the machine's load, the CPU time does), and the idle cost:
SQL statements and transactions per second while nothing is written (the relay's polling).

--request-load N adds N tasks that behave like request handlers of a saturated service:
each takes a pooled connection for a query, then spends --request-cpu-ms on the event loop;
the event loop's turn (how long a ready task waits to run again) is printed alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from typing import Any

from asgi_lifespan import LifespanManager
from sqlalchemy import Column, DateTime, MetaData, Table, event, func, insert, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from servicekit.app import Runtime, ServiceSpec, build_app, runtime_consumer
from servicekit.config import ServiceSettings
from servicekit.events import EventEnvelope, add_event, new_event, outbox_table, processed_events_table
from servicekit.testing.helpers import database_url, test_settings_overrides

HANDLED_KEY = "event_latency.handled"


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Clock:
    """When each event was committed by its writer, and when its handler's transaction committed."""

    def __init__(self) -> None:
        self.committed: dict[uuid.UUID, float] = {}
        self.handled: dict[uuid.UUID, float] = {}
        self.waiting: set[uuid.UUID] = set()
        self.all_handled = asyncio.Event()

    def expect(self, ids: list[uuid.UUID]) -> None:
        self.waiting = set(ids)
        self.all_handled.clear()

    def on_commit(self, session: Session) -> None:
        event_id = session.info.pop(HANDLED_KEY, None)
        if event_id is not None:
            self.handled[event_id] = time.perf_counter()
            self.waiting.discard(event_id)
            if not self.waiting:
                self.all_handled.set()

    def latencies_ms(self, ids: list[uuid.UUID]) -> list[float]:
        return sorted((self.handled[i] - self.committed[i]) * 1000 for i in ids)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("TEST_DATABASE_NAME", "moviebooking_test"))
    parser.add_argument("--events", type=int, default=2000, help="events timed (after 100 to warm up)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events/s, all writers together; 0: flat out"
    )
    parser.add_argument("--writers", type=int, default=8, help="concurrent writing tasks")
    parser.add_argument("--poll-interval", type=float, help="OUTBOX_POLL_INTERVAL (default: the setting's)")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--request-load", type=int, default=0, help="request-like tasks alongside")
    parser.add_argument("--request-cpu-ms", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="bound on the timed phase")
    return parser.parse_args()


def bench_settings(args: argparse.Namespace, schema: str) -> ServiceSettings:
    run = uuid.uuid4().hex[:8]
    overrides = test_settings_overrides("postgres", schema, service_name="event-bench")
    overrides.update(
        database_url=database_url("postgres", args.database),
        events_exchange=f"bench.{run}.events",
        queue_prefix=f"bench.{run}.",
        log_level="WARNING",
    )
    overrides.pop("outbox_poll_interval")  # the setting's own default unless asked
    if args.poll_interval is not None:
        overrides["outbox_poll_interval"] = args.poll_interval
    return ServiceSettings(**overrides)


def bench_tables(schema: str) -> tuple[MetaData, Table, Table, Table]:
    metadata = MetaData(schema=schema)
    handled = Table(
        "handled",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("handled_at", DateTime(timezone=True), server_default=func.now()),
    )
    return metadata, outbox_table(metadata), processed_events_table(metadata), handled


async def create_schema(engine: AsyncEngine, schema: str, metadata: MetaData) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)


async def consuming(runtime: Runtime, within: float = 30.0) -> None:
    """Wait until the consumer has declared its queue (start-up runs it in the background)."""
    deadline = time.monotonic() + within
    while not (runtime.consumers and runtime.consumers[0].queue is not None):  # noqa: ASYNC110
        if time.monotonic() > deadline:
            sys.exit("the consumer did not start")
        await asyncio.sleep(0.05)


async def write_events(
    runtime: Runtime, outbox: Table, clock: Clock, ids: list[uuid.UUID], start: float, every: float
) -> None:
    """Commit one event per transaction, each at its slot of the open-loop schedule."""
    for n, event_id in enumerate(ids):
        if every:
            await asyncio.sleep(max(0.0, start + n * every - time.perf_counter()))
        envelope = new_event("bench.happened", "event-bench", {"n": n})
        envelope.event_id = event_id
        async with runtime.sessionmaker() as session:
            await add_event(session, outbox, envelope)
            await session.commit()
            clock.committed[event_id] = time.perf_counter()


async def load_requests(runtime: Runtime, cpu_ms: float, stop: asyncio.Event) -> None:
    """A request handler in a loop: a query on the shared pool, then CPU on the event loop."""
    while not stop.is_set():
        async with runtime.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        until = time.process_time() + cpu_ms / 1000
        while time.process_time() < until:
            pass
        await asyncio.sleep(0)


async def time_loop_turns(turns: list[float], stop: asyncio.Event) -> None:
    """How long a ready task waits for its next turn on the event loop (sampled every 10 ms)."""
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(0)
        turns.append((time.perf_counter() - before) * 1000)
        await asyncio.sleep(0.01)


async def run_batch(
    runtime: Runtime, outbox: Table, clock: Clock, count: int, args: argparse.Namespace
) -> tuple[list[uuid.UUID], float, float]:
    """Write ``count`` events with the writers and wait until each is handled."""
    ids = [uuid.uuid4() for _ in range(count)]
    writers = max(1, min(args.writers, count))
    every = writers / args.rate if args.rate else 0.0
    clock.expect(ids)
    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(
        *(
            write_events(runtime, outbox, clock, ids[w::writers], start + w * every / writers, every)
            for w in range(writers)
        )
    )
    try:
        await asyncio.wait_for(clock.all_handled.wait(), args.max_seconds)
    except TimeoutError:
        sys.exit(f"{len(clock.waiting)} of {count} events not handled within {args.max_seconds:.0f} s")
    elapsed = max(clock.handled[i] for i in ids) - start
    return ids, elapsed, time.process_time() - cpu


class SqlCount:
    """SQL statements and transactions (BEGIN ... COMMIT/ROLLBACK) this process sends on an engine."""

    def __init__(self, runtime: Runtime) -> None:
        self.engine = runtime.engine.sync_engine
        self.statements = self.transactions = 0

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _transaction(self, *_: Any) -> None:
        self.transactions += 1

    def __enter__(self) -> SqlCount:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._transaction)
        event.listen(self.engine, "rollback", self._transaction)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._transaction)
        event.remove(self.engine, "rollback", self._transaction)


def report(
    args: argparse.Namespace, clock: Clock, ids: list[uuid.UUID], elapsed: float, cpu: float, sql: SqlCount
) -> None:
    lat = clock.latencies_ms(ids)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    rate = f"{args.rate:.0f}/s" if args.rate else "flat out"
    load = f", request load {args.request_load} x {args.request_cpu_ms} ms CPU" if args.request_load else ""
    say(f"events {len(ids)}, writers {args.writers}, rate {rate}{load}")
    say(f"commit -> handled  p50 {statistics.median(lat):.1f} ms  p99 {p99:.1f} ms  max {lat[-1]:.1f} ms")
    say(f"throughput         {len(ids) / elapsed:.0f} events/s")
    say(f"CPU per event      {cpu / len(ids) * 1000:.2f} ms (this process: writers, relay, consumer)")
    if not args.request_load:
        per_event = (
            f"{sql.statements / len(ids):.2f} statements, {sql.transactions / len(ids):.2f} transactions"
        )
        say(f"SQL per event      {per_event} (writer + relay + consumer)")


async def main() -> None:
    args = parse_args()
    schema = f"evbench_{uuid.uuid4().hex[:8]}"
    settings = bench_settings(args, schema)
    metadata, outbox, processed, handled = bench_tables(schema)
    admin = create_async_engine(settings.database_url.get_secret_value())
    await create_schema(admin, schema, metadata)
    clock = Clock()
    event.listen(Session, "after_commit", clock.on_commit)

    async def handle(session: AsyncSession, envelope: EventEnvelope) -> None:
        await session.execute(insert(handled).values(event_id=envelope.event_id))
        session.info[HANDLED_KEY] = envelope.event_id

    spec = ServiceSpec(
        title="event-bench",
        description="",
        routers=[],
        outbox=outbox,
        consumers=lambda rt: [runtime_consumer(rt, "event-bench", ["bench.#"], handle, processed)],
    )
    app = build_app(settings, spec)
    try:
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30):
            runtime: Runtime = app.state.runtime
            await consuming(runtime)
            pool = f"{settings.db_pool_size}+{settings.db_max_overflow}"
            say(f"OUTBOX_POLL_INTERVAL {settings.outbox_poll_interval} s, pool {pool}")
            await run_batch(runtime, outbox, clock, 100, args)  # warm-up
            stop, turns = asyncio.Event(), []
            load = [
                asyncio.create_task(load_requests(runtime, args.request_cpu_ms, stop))
                for _ in range(args.request_load)
            ]
            load.append(asyncio.create_task(time_loop_turns(turns, stop)))
            with SqlCount(runtime) as sql:
                ids, elapsed, cpu = await run_batch(runtime, outbox, clock, args.events, args)
            stop.set()
            await asyncio.gather(*load)
            report(args, clock, ids, elapsed, cpu, sql)
            turns.sort()
            p50, p99 = statistics.median(turns), turns[int(len(turns) * 0.99)]
            say(f"event-loop turn    p50 {p50:.1f} ms  p99 {p99:.1f} ms (what every await waits for)")
            await asyncio.sleep(1.0)
            with SqlCount(runtime) as idle:
                await asyncio.sleep(args.idle_seconds)
            per_second = f"{idle.statements / args.idle_seconds:.1f} SQL statements/s"
            say(
                f"idle               {per_second}, {idle.transactions / args.idle_seconds:.1f} transactions/s"
            )
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
