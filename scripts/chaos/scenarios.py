"""The five failures. Each runs under the steady purchase load: the fault comes FAULT_AFTER
seconds into LOAD_SECONDS of load, on a showtime of the scenario's own; then a bounded settle,
and the books are read.

They run in an order that leaves each the nodes it needs (RUN_ORDER): the replicas and the
network cut first (they heal), then the data nodes, each lost for good: the Redis master, the
RabbitMQ node that leads the queues (two of three nodes keep every quorum queue), and last the
PostgreSQL primary (nothing afterwards needs a standby).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chaos.books import read_books, settle
from chaos.ledger import Verdict, judge
from chaos.load import Purchase, SteadyLoad
from chaos.procs import Processes
from chaos.system import DB_NAME, System
from chaos.topology import Topology

LOAD_SECONDS = 24.0
FAULT_AFTER = 4.0
RATE = 5.0  # purchases started per second
SETTLE_SECONDS = 45.0
CUT_SECONDS = 10.0
RESTART_AFTER_SECONDS = 5.0  # a supervisor starts a crashed replica again (Kubernetes: a few s)
DETECTION_SECONDS = 1.0  # the HA manager's time to see the primary is gone before promoting


@dataclass
class Run:
    topology: Topology
    system: System
    procs: Processes
    tokens: list[str]
    showtimes: dict[int, tuple[str, list[str]]]  # scenario number -> (showtime id, seat ids)


@dataclass(frozen=True)
class Scenario:
    number: int
    name: str
    inject: Callable[[Run], Awaitable[str]]  # makes the fault (and heals what heals); says what it did


async def kill_postgres_primary(run: Run) -> str:
    lost = run.topology.writer
    await asyncio.to_thread(run.topology.pg.kill, lost)
    await asyncio.sleep(DETECTION_SECONDS)
    await asyncio.to_thread(run.topology.fail_over_postgres)
    run.system.follow_writer()
    return f"killed PostgreSQL {lost} (postmaster and backends), promoted {run.topology.writer}"


async def kill_rabbit_leader(run: Run) -> str:
    cluster = run.topology.rabbit
    running = [node for node in cluster.nodes if cluster.alive(node)]
    leaders = await asyncio.to_thread(cluster.leaders, running[0])
    if not leaders:
        raise RuntimeError("no quorum queue in the cluster (RABBITMQ_QUORUM_QUEUES off?)")
    name, led = leaders.most_common(1)[0]
    node = next(node for node in cluster.nodes if node.name == name)
    await asyncio.to_thread(cluster.kill, node)
    return f"killed RabbitMQ {name}, leader of {led} of {sum(leaders.values())} quorum queues"


async def kill_redis_master(run: Run) -> str:
    master = await run.topology.redis_master()
    name = "redis-master" if master == run.topology.ports.redis[0] else "redis-replica"
    await asyncio.to_thread(run.procs.kill, name)
    return f"killed the Redis master ({name}, :{master}); the sentinels promote the replica"


async def kill_replicas(run: Run) -> str:
    run.system.kill_part("booking")
    run.system.kill_part("payment")
    await asyncio.sleep(RESTART_AFTER_SECONDS)
    began = time.monotonic()
    await run.system.up()  # run_local.sh up starts the parts that are not running
    healthy = time.monotonic() - began
    return f"kill -9 booking and payment (replica 1 each); started again, healthy {healthy:.1f} s later"


async def cut_payment_database(run: Run) -> str:
    proxy = run.system.payment_db_proxy
    await proxy.cut()
    await asyncio.sleep(CUT_SECONDS)
    await proxy.restore()
    return f"payment's connections to the primary cut and refused for {CUT_SECONDS:.0f} s"


SCENARIOS = {
    1: Scenario(1, "PostgreSQL primary killed, standby promoted", kill_postgres_primary),
    2: Scenario(2, "RabbitMQ queue leader node killed", kill_rabbit_leader),
    3: Scenario(3, "Redis master killed, sentinels promote the replica", kill_redis_master),
    4: Scenario(4, "a booking and a payment replica killed", kill_replicas),
    5: Scenario(5, "payment cut off from PostgreSQL for 10 s", cut_payment_database),
}
RUN_ORDER = (4, 5, 3, 2, 1)


async def run_scenario(scenario: Scenario, run: Run) -> tuple[Verdict, str]:
    """The load with the fault in it, the settle, the books: the verdict and what happened."""
    showtime_id, seats = run.showtimes[scenario.number]
    load = SteadyLoad(run.system.base_url, run.tokens, showtime_id, seats, RATE)
    loading = asyncio.create_task(load.run(LOAD_SECONDS))
    await asyncio.sleep(FAULT_AFTER)
    detail, fault_at = await _make_fault(scenario, run)
    purchases = await loading
    told = {p.outcome.booking_id for p in purchases if p.succeeded and p.outcome.booking_id}
    dsn = run.topology.dsn(DB_NAME)
    settled = await settle(dsn, run.system.mail_index, showtime_id, told, SETTLE_SECONDS)
    books = await read_books(dsn, run.system.mail_index, showtime_id)
    streams = [[p.booked for p in purchases], [attempt for p in purchases for attempt in p.payments]]
    verdict = judge((scenario.number, scenario.name), streams, told, books, fault_at, len(purchases))
    return verdict, f"{detail}\n    {_answers(load, purchases)}; books settled {settled:.1f} s after the load"


async def _make_fault(scenario: Scenario, run: Run) -> tuple[str, float | None]:
    """What the fault did, and when it began (None: it could not be made, the scenario fails)."""
    began = time.monotonic()
    try:
        return await scenario.inject(run), began
    except Exception as exc:  # the run goes on with the next scenario
        return f"the fault could not be made: {type(exc).__name__}: {exc}", None


def _answers(load: SteadyLoad, purchases: list[Purchase]) -> str:
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(load.statuses.items()))
    slowest = max((p.finished - p.started for p in purchases), default=0.0)
    return f"answers {{{statuses}}}, slowest purchase {slowest:.1f} s"
