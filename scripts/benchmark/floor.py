"""The floor of a purchase: the CPU of each unit of work a purchase is made of, measured here in
one run, times how many of each the purchase's design needs.

    .venv/bin/python scripts/benchmark/floor.py [--operations 4000] [--clients 16]

Each unit is measured alone, with the services' client libraries and server settings, on the
machine's own PostgreSQL, Redis and RabbitMQ, and counted on both ends (CPU seconds from
/proc, or ``time.process_time`` for this process):

- ``http``: one request answered by a bare FastAPI endpoint under uvicorn (uvloop, httptools,
  no access log: the services' settings; ``reference_endpoint.py /bare``), the server process
  only. The services add their middlewares, admission and authentication on top.
- ``query``: the yardstick itself (one ``SELECT 1`` and one Redis ``GET`` behind FastAPI), its
  server process plus its PostgreSQL backends.
- ``round trip``: one prepared statement on an asyncpg connection (this process, uvloop,
  ``--clients`` connections at once), plus its backend's CPU; alone (autocommit) and as a
  transaction (BEGIN, the statement, COMMIT: what every multi-statement step costs).
- ``event``: one persistent message published with a publisher confirm to a durable quorum
  queue, delivered to a consumer (prefetch 20) and acked, through aio-pika (this process) plus
  the broker's CPU less its idle rate (the broker is shared: read the idle rate in the output).

The purchase's counts are the design's, not today's code's: two API requests (book, pay), the
round trips no step can do without (one per step that must see a lock's effect), three events
(``booking.created``, ``payment.completed``, ``booking.confirmed``), each published by a relay
and consumed with its dedupe record. The tickets mail is measured by ``notification_cpu.py``.
Stops by itself; uses its own queue (deleted) and table (both removed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from load import Job, Plan, run  # noqa: E402
from report import say  # noqa: E402
from stack import children_by_parent, cpu_seconds  # noqa: E402
from yardstick import reference_server  # noqa: E402

PG_DSN = os.environ.get("FLOOR_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("FLOOR_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@dataclass(frozen=True)
class Unit:
    """The CPU of one operation: in the client (or the server process), in PostgreSQL or the
    broker, in ms."""

    name: str
    client_ms: float
    server_ms: float

    @property
    def total_ms(self) -> float:
        return self.client_ms + self.server_ms


async def backend_pids(application_name: str) -> list[int]:
    connection = await asyncpg.connect(PG_DSN)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
        )
    finally:
        await connection.close()
    return [row["pid"] for row in rows]


def http_unit(path: str, operations: int, clients: int) -> tuple[float, float, float]:
    """(server ms, backend ms, req/s) per request of the reference endpoint's ``path``."""
    with reference_server(lifetime_seconds=600) as url:
        server = _listener_pid(url)
        warm = Plan(url, [Job("get", path)] * min(operations, 1000), clients, 60)
        run(warm)
        backends = asyncio.run(backend_pids("mb-reference"))
        before = cpu_seconds(server), sum(cpu_seconds(pid) for pid in backends)
        result = run(Plan(url, [Job("get", path)] * operations, clients, 120))
        after = cpu_seconds(server), sum(cpu_seconds(pid) for pid in backends)
    done = sum(1 for outcome in result.outcomes if outcome.status == 200)
    return (
        (after[0] - before[0]) * 1000 / done,
        (after[1] - before[1]) * 1000 / done,
        done / result.wall,
    )


def _listener_pid(url: str) -> int:
    """The reference endpoint's process: the one child of ours that listens on the URL's port."""
    port = int(url.rsplit(":", 1)[1])
    inode = _listening_inode(port)
    for pid in children_by_parent().get(os.getpid(), []):
        fds = Path(f"/proc/{pid}/fd")
        for fd in fds.iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise RuntimeError("the reference endpoint's process was not found")


def _listening_inode(port: int) -> str:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                return fields[9]
    raise RuntimeError(f"nothing listens on {port}")


async def round_trip_units(operations: int, clients: int) -> list[Unit]:
    """One statement alone, and one inside BEGIN/COMMIT, over ``clients`` connections at once.

    The rows go to a table of their own (logged, like the services' tables: each commit
    flushes the WAL), dropped at the end.
    """
    table = f"floor_rows_{uuid.uuid4().hex[:8]}"
    settings = {"application_name": "mb-floor"}
    connections = [await asyncpg.connect(PG_DSN, server_settings=settings) for _ in range(clients)]
    try:
        await connections[0].execute(f"CREATE TABLE {table} (id int, note text)")
        backends = [await connection.fetchval("SELECT pg_backend_pid()") for connection in connections]
        per_client = max(1, operations // clients)
        insert = f"INSERT INTO {table} VALUES ($1, $2)"  # noqa: S608  (our own table name)

        async def alone(connection: asyncpg.Connection) -> None:
            for index in range(per_client):
                await connection.execute(insert, index, "x")

        async def in_transaction(connection: asyncpg.Connection) -> None:
            for index in range(per_client):
                async with connection.transaction():
                    await connection.execute(insert, index, "x")

        async def select(connection: asyncpg.Connection) -> None:
            for index in range(per_client):
                await connection.fetchval("SELECT $1::int", index)

        units = []
        for name, work in (
            ("round trip: SELECT $1 (autocommit)", select),
            ("round trip: INSERT (autocommit: commits, WAL flush)", alone),
            ("BEGIN + INSERT + COMMIT (3 round trips)", in_transaction),
        ):
            await asyncio.gather(*(work(connection) for connection in connections))  # warm
            client, server = time.process_time(), sum(cpu_seconds(pid) for pid in backends)
            await asyncio.gather(*(work(connection) for connection in connections))
            client = time.process_time() - client
            server = sum(cpu_seconds(pid) for pid in backends) - server
            count = per_client * clients
            units.append(Unit(name, client * 1000 / count, server * 1000 / count))
        return units
    finally:
        await connections[0].execute(f"DROP TABLE IF EXISTS {table}")
        for connection in connections:
            await connection.close()


def broker_pids() -> list[int]:
    """The broker of AMQP_URL: the beam.smp process listening on its port (private test nodes of
    other users come and go and are not counted)."""
    port = urlsplit(AMQP_URL).port or 5672
    inode = _listening_inode(port)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() != "beam.smp":
                    continue
                fds = list(Path(f"/proc/{entry}/fd").iterdir())
            except OSError:
                continue
            if any(_points_to(fd, f"socket:[{inode}]") for fd in fds):
                return [int(entry)]
    raise RuntimeError(f"no beam.smp listens on {port}")


def _points_to(fd: Path, target: str) -> bool:
    try:
        return os.readlink(fd) == target
    except OSError:
        return False


def broker_cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def event_units(operations: int, clients: int) -> tuple[Unit, Unit, float]:
    """(publish, consume+ack, broker idle ms/s): persistent, confirmed, on a quorum queue."""
    pids = broker_pids()
    idle_before = broker_cpu(pids)
    await asyncio.sleep(2.0)
    idle_rate = (broker_cpu(pids) - idle_before) / 2.0
    queue_name = f"bench.floor.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(queue_name, durable=True, arguments={"x-queue-type": "quorum"})
        body = b'{"event_type": "bench.floor", "data": {"booking_id": "' + uuid.uuid4().hex.encode() + b'"}}'
        per_client = max(1, operations // clients)

        async def publish_some() -> None:
            for _ in range(per_client):
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await channel.default_exchange.publish(message, routing_key=queue_name)

        client, broker, started = time.process_time(), broker_cpu(pids), time.monotonic()
        await asyncio.gather(*(publish_some() for _ in range(clients)))
        count = per_client * clients
        publish_client = time.process_time() - client
        publish_broker = broker_cpu(pids) - broker - idle_rate * (time.monotonic() - started)

        consumer_channel = await connection.channel()
        await consumer_channel.set_qos(prefetch_count=20)
        consuming = await consumer_channel.get_queue(queue_name)
        received = 0
        finished = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            await message.ack()
            received += 1
            if received == count:
                finished.set()

        client, broker, started = time.process_time(), broker_cpu(pids), time.monotonic()
        tag = await consuming.consume(on_message)
        await asyncio.wait_for(finished.wait(), timeout=120)
        consume_client = time.process_time() - client
        consume_broker = broker_cpu(pids) - broker - idle_rate * (time.monotonic() - started)
        await consuming.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
    return (
        Unit(
            "event published (persistent, confirmed)",
            publish_client * 1000 / count,
            publish_broker * 1000 / count,
        ),
        Unit("event delivered and acked", consume_client * 1000 / count, consume_broker * 1000 / count),
        idle_rate * 1000,
    )


# What the design needs per purchase, at the least (see the module docstring and
# docs/benchmarks.md): API requests; statements in autocommit; multi-statement transactions
# (a step that takes a lock and must read after it); events.
PURCHASE = {
    "api requests": 2,  # POST /book, POST /process
    "single statements": 9,  # /book; key claim; ledger; 3 consumers' dedupe+effect; 3 relay marks
    "transactions": 3,  # payment's start and finish (lock, then read+write), relay claims ~1
    "events": 3,  # booking.created, payment.completed, booking.confirmed
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=16)
    arguments = parser.parse_args()
    operations, clients = arguments.operations, arguments.clients

    bare_ms, _, bare_rate = http_unit("/bare", operations, clients)
    query_ms, query_pg_ms, query_rate = http_unit("/query", operations, clients)
    statement, insert, transaction = uvloop.run(round_trip_units(operations, clients))
    published, delivered, broker_idle = uvloop.run(event_units(operations, clients))
    units = [
        Unit("http request (bare FastAPI, server only)", bare_ms, 0.0),
        Unit("yardstick request (FastAPI + SELECT 1 + Redis GET)", query_ms, query_pg_ms),
        statement,
        insert,
        transaction,
        published,
        delivered,
    ]
    say(f"Units of work, CPU per operation ({operations} operations, {clients} at once):")
    say(f"  {'unit':<52} {'client ms':>10} {'server ms':>10} {'total ms':>9}")
    for unit in units:
        say(f"  {unit.name:<52} {unit.client_ms:>10.3f} {unit.server_ms:>10.3f} {unit.total_ms:>9.3f}")
    say(
        f"  (bare FastAPI {bare_rate:,.0f} req/s, yardstick {query_rate:,.0f} req/s; broker idle "
        f"{broker_idle:.0f} ms/s, taken off its figures; 'server' is PostgreSQL's backend or the broker)"
    )
    event = published.total_ms + delivered.total_ms
    parts = {
        "api requests": PURCHASE["api requests"] * bare_ms,
        "single statements": PURCHASE["single statements"] * insert.total_ms,
        "transactions": PURCHASE["transactions"] * transaction.total_ms,
        "events": PURCHASE["events"] * event,
    }
    say("\nThe purchase's floor (the design's least work, nothing else: no validation, no JSON, no")
    say("middleware, no logging, no metrics, no mail):")
    for name, cost in parts.items():
        say(f"  {PURCHASE[name]} x {name:<20} {cost:>7.2f} ms")
    floor = sum(parts.values())
    say(f"  {'floor':<24} {floor:>7.2f} ms   (= {floor / query_ms:.1f} yardstick requests' server CPU)")


if __name__ == "__main__":
    main()
