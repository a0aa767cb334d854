"""A RabbitMQ cluster loses the node that hosts the queue leader: nothing is lost.

A private three-node cluster (own node names, ports, data folders and Erlang cookie, in a
folder of the test's; never the machine's shared broker; the machine's epmd is used). The
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
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from faultkit import free_port
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


def _rabbitmq_scripts() -> Path | None:
    """Where rabbitmq-server and rabbitmqctl really are. Not Debian's /usr/sbin wrappers: run
    as root, they switch to the rabbitmq user, whose home (and Erlang cookie) is the shared node's."""
    found = shutil.which("rabbitmq-server")
    for folder in (Path("/usr/lib/rabbitmq/bin"), Path(found).parent if found else None):
        if folder and (folder / "rabbitmq-server").exists() and (folder / "rabbitmqctl").exists():
            return folder
    return None


SCRIPTS = _rabbitmq_scripts()
pytestmark = pytest.mark.skipif(SCRIPTS is None, reason="needs rabbitmq-server (RabbitMQ's scripts)")
STARTUP_SECONDS = 60
RUN = uuid.uuid4().hex[:8]
# The figures (start-up, failover) go to this log: pytest -o log_cli=true -o log_cli_level=INFO
figures = logging.getLogger("rabbitmq-cluster-test")


@dataclass
class Node:
    name: str  # the Erlang node name, e.g. mbha1-1a2b3c4d@localhost
    amqp_port: int
    dist_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def label(self) -> str:
        return f"127.0.0.1:{self.amqp_port}"


@dataclass
class Cluster:
    folder: Path
    nodes: list[Node] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment of every RabbitMQ process here: its own HOME, with its own cookie."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(self.folder)}

    def ctl(self, node: Node, *args: str) -> str:
        assert SCRIPTS is not None
        command = [str(SCRIPTS / "rabbitmqctl"), "-n", node.name, *args]
        done = subprocess.run(
            command, env=self.env(), capture_output=True, text=True, timeout=STARTUP_SECONDS
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name}: {done.stderr.strip()[-500:]}")
        return done.stdout

    def start(self, node: Node) -> None:
        assert SCRIPTS is not None
        home = self.folder / node.name
        home.mkdir()
        (home / "rabbitmq.conf").write_text("log.file.level = warning\n")
        env = {
            **self.env(),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(node.amqp_port),
            # Explicit: the default (AMQP port + 20000) may be taken by another broker's node.
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(home / "pid"),
        }
        with (home / "stdout.log").open("wb") as log:  # the child keeps its own descriptor
            node.process = subprocess.Popen(
                [str(SCRIPTS / "rabbitmq-server")],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def await_startup(self, node: Node) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:  # the node answers only once it has registered with epmd
            try:
                self.ctl(node, "await_startup", "--timeout", str(STARTUP_SECONDS))
                return
            except RuntimeError:
                if time.monotonic() > deadline or (node.process and node.process.poll() is not None):
                    raise
                time.sleep(0.3)

    def join(self, node: Node, seed: Node) -> None:
        self.ctl(node, "stop_app")
        self.ctl(node, "join_cluster", seed.name)
        self.ctl(node, "start_app")
        self.ctl(node, "await_startup")

    def kill(self, node: Node) -> None:
        """The node is lost: its whole process group (the Erlang VM and its helpers), at once."""
        if node.process is not None and node.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(10)

    def queue(self, asked: Node, name: str) -> dict[str, str]:
        """The queue as the cluster reports it: type, leader, members."""
        listed = self.ctl(
            asked, "list_queues", "--quiet", "--no-table-headers", "name", "type", "leader", "members"
        )
        for line in listed.splitlines():
            queue, kind, leader, members = (line.split("\t") + ["", "", ""])[:4]
            if queue == name:
                return {"type": kind, "leader": leader, "members": members}
        raise AssertionError(f"no queue {name} on {asked.name}")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    folder = Path(tempfile.mkdtemp(prefix="mb-rabbit-cluster-"))
    made = Cluster(folder, [Node(f"mbha{i}-{RUN}@localhost", free_port(), free_port()) for i in (1, 2, 3)])
    cookie = folder / ".erlang.cookie"
    cookie.write_text(uuid.uuid4().hex)
    cookie.chmod(0o400)
    (folder / "enabled_plugins").write_text("[].\n")
    started = time.monotonic()
    try:
        for node in made.nodes:
            made.start(node)
        with ThreadPoolExecutor(3) as pool:  # the nodes boot side by side
            list(pool.map(made.await_startup, made.nodes))
            seed, *others = made.nodes
            list(pool.map(lambda node: made.join(node, seed), others))
        figures.info("three-node RabbitMQ cluster up in %.1f s", time.monotonic() - started)
        yield made
    finally:
        for node in made.nodes:
            made.kill(node)
        shutil.rmtree(folder, ignore_errors=True)


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
    cluster: Cluster, storage: Storage
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
        main = await asyncio.to_thread(cluster.queue, first, consumer.queue_name)
        assert main["type"] == "quorum" and all(node.name in main["members"] for node in cluster.nodes)
        assert (broker.node, main["leader"]) == (first.label, first.name)  # the node to lose
        writer = asyncio.create_task(write_events(storage, written, stop_writing))
        await wait_until(
            lambda: _handled_first(handled, written, 20), within=15, what="events before the loss"
        )

        killed_at = time.monotonic()
        await asyncio.to_thread(cluster.kill, first)
        await wait_until(lambda: _moved_off(broker, first), within=20, what="the Broker on another node")
        reconnected_after = time.monotonic() - killed_at
        written_after = len(written)
        await wait_until(
            lambda: _handled_first(handled, written, written_after + 50),
            within=30,
            what="events written after the loss, handled",
        )
        flowing_again_after = time.monotonic() - killed_at
        stop_writing.set()
        await writer
        await wait_until(lambda: _handled_all(handled, written), within=30, what="every event written")
        assert await _unpublished(storage) == 0
        leader_now = (await asyncio.to_thread(cluster.queue, cluster.nodes[1], consumer.queue_name))["leader"]
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


async def _moved_off(broker: Broker, lost: Node) -> bool:
    return broker.is_connected and broker.node != lost.label


async def _unpublished(storage: Storage) -> int:
    async with storage.sessionmaker() as session:
        rows = await session.execute(
            select(storage.outbox.c.event_id).where(storage.outbox.c.published_at.is_(None))
        )
        return len(rows.all())
