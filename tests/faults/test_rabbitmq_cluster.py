"""A RabbitMQ cluster loses the node that hosts the queue leader: nothing is lost.

A private three-node cluster (servicekit.testing.rabbit_cluster: its own ports, epmd, data
folders and Erlang cookie, in a folder of the test's; never the machine's shared broker). The
outbox relay publishes a steady stream of events through a Broker given the three nodes as
RABBITMQ_URL; a consumer takes them from its quorum queues. The node the Broker is connected
to, which is where the queues' leaders were placed (quorum queues start their leader on the
declaring client's node), is killed. The Broker moves to another node of the list, the
consumer consumes there from the re-elected leader, and every event written to the outbox,
before, during and after the loss, is handled. The nodes are killed and the folder removed
also when the test fails.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import MetaData, Table, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.config import ServiceSettings
from servicekit.events import add_event, new_event, outbox_table, processed_events_table
from servicekit.events.broker import Broker
from servicekit.events.consumer import EventConsumer
from servicekit.events.envelope import EventEnvelope
from servicekit.events.relay import OutboxRelay
from servicekit.testing import wait_until
from servicekit.testing.helpers import database_url
from servicekit.testing.processes import free_port
from servicekit.testing.rabbit_cluster import RabbitCluster, RabbitNode, rabbitmq_missing

pytestmark = pytest.mark.skipif(rabbitmq_missing(), reason="needs rabbitmq-server (RabbitMQ's scripts)")
RUN = uuid.uuid4().hex[:8]
# The figures (start-up, failover) go to this log: pytest -o log_cli=true -o log_cli_level=INFO
figures = logging.getLogger("rabbitmq-cluster-test")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RabbitCluster]:
    folder = Path(tempfile.mkdtemp(prefix="mb-rabbit-cluster-"))
    node_ports = [(free_port(), free_port()) for _ in range(3)]
    made = RabbitCluster(folder, free_port(), node_ports, name="mbha")
    started = time.monotonic()
    try:
        made.start()
        figures.info("three-node RabbitMQ cluster up in %.1f s", time.monotonic() - started)
        yield made
    finally:
        made.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


def queue(cluster: RabbitCluster, asked: RabbitNode, name: str) -> dict[str, str]:
    """The queue as the cluster reports it: type, leader, members."""
    kind, leader, members = cluster.list_queues(asked, "type", "leader", "members")[name]
    return {"type": kind, "leader": leader, "members": members}


@pytest.fixture(autouse=True)
def healthy() -> None:
    """Replaces the fault tests' own: this test runs none of the stack's services."""


class Handled:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def __call__(self, session: AsyncSession, event: EventEnvelope) -> None:
        self.ids.add(str(event.event_id))


@dataclass
class Storage:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    outbox: Table
    processed: Table


@pytest.fixture
async def storage() -> AsyncIterator[Storage]:
    """An outbox and a consumer ledger in a schema of the test's own, in the test database."""
    schema = f"rabbitha_{RUN}"
    metadata = MetaData(schema=schema)
    outbox, processed = outbox_table(metadata), processed_events_table(metadata)
    engine = create_async_engine(database_url("postgres"), pool_size=3, max_overflow=0)
    async with engine.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        await connection.run_sync(metadata.create_all)
    try:
        yield Storage(engine, async_sessionmaker(engine, expire_on_commit=False), outbox, processed)
    finally:
        async with engine.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


async def write_events(storage: Storage, written: list[str], stop: asyncio.Event) -> None:
    """A steady stream of events into the outbox, one every 20 ms, until ``stop``."""
    while not stop.is_set():
        event = new_event("rabbitha.tick", "rabbitha-test", {"n": len(written)})
        async with storage.sessionmaker() as session, session.begin():
            await add_event(session, storage.outbox, event)
        written.append(str(event.event_id))
        await asyncio.sleep(0.02)


async def test_losing_the_node_of_the_queue_leaders_loses_no_event(
    cluster: RabbitCluster, storage: Storage
) -> None:
    first = cluster.nodes[0]
    settings = ServiceSettings(
        service_name="rabbitha-test",
        rabbitmq_url=",".join(node.url for node in cluster.nodes),
        events_exchange=f"rabbitha.{RUN}.events",
        queue_prefix=f"rabbitha.{RUN}.",
        outbox_poll_interval=0.1,
        consumer_retry_base_ms=50,
    )
    broker, handled = Broker(settings), Handled()
    consumer = EventConsumer(
        "events", ["rabbitha.#"], handled, storage.sessionmaker, storage.processed, broker, settings
    )
    relay = OutboxRelay(storage.engine, storage.outbox, broker, settings)
    written: list[str] = []
    stop_writing = asyncio.Event()
    broker.start()
    try:
        await asyncio.wait_for(consumer.start(), timeout=30)
        relay.start()
        main = await asyncio.to_thread(queue, cluster, first, consumer.queue_name)
        assert main["type"] == "quorum" and all(node.name in main["members"] for node in cluster.nodes)
        assert (broker.node, main["leader"]) == (first.label, first.name)  # the node to lose
        writer = asyncio.create_task(write_events(storage, written, stop_writing))
        await wait_until(
            lambda: _handled_first(handled, written, 20), within=15, what="events before the loss"
        )

        killed_at = time.monotonic()
        # The node's connections drop at the SIGKILL; kill returns once its process group is
        # reaped too, a second or so later: the Broker's move is timed from the signal.
        killing = asyncio.ensure_future(asyncio.to_thread(cluster.kill, first))
        await wait_until(lambda: _moved_off(broker, first), within=20, what="the Broker on another node")
        reconnected_after = time.monotonic() - killed_at
        written_after = len(written)
        await wait_until(
            lambda: _handled_first(handled, written, written_after + 50),
            within=30,
            what="events written after the loss, handled",
        )
        flowing_again_after = time.monotonic() - killed_at
        await killing
        stop_writing.set()
        await writer
        await wait_until(lambda: _handled_all(handled, written), within=30, what="every event written")
        assert await _unpublished(storage) == 0
        now = await asyncio.to_thread(queue, cluster, cluster.nodes[1], consumer.queue_name)
        leader_now = now["leader"]
        assert leader_now in (cluster.nodes[1].name, cluster.nodes[2].name)
        figures.info(
            "%d events, none lost; Broker on %s %.1f s after the kill, events handled again %.1f s "
            "after it; leader now %s",
            *(len(written), broker.node, reconnected_after, flowing_again_after, leader_now),
        )
    finally:
        stop_writing.set()
        await relay.stop()
        await broker.close()


async def _handled_all(handled: Handled, ids: list[str]) -> bool:
    return set(ids) <= handled.ids


async def _handled_first(handled: Handled, written: list[str], count: int) -> bool:
    """The first ``count`` events written (once there are that many) were all handled."""
    return len(written) >= count and set(written[:count]) <= handled.ids


async def _moved_off(broker: Broker, lost: RabbitNode) -> bool:
    return broker.is_connected and broker.node != lost.label


async def _unpublished(storage: Storage) -> int:
    async with storage.sessionmaker() as session:
        rows = await session.execute(
            select(storage.outbox.c.event_id).where(storage.outbox.c.published_at.is_(None))
        )
        return len(rows.all())
