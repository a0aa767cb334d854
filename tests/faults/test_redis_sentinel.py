"""Redis through Sentinel: the services' client finds the master by asking the sentinels, and
follows a promotion when the master dies. A private master, replica and sentinel on their own
ports and folder (never the machine's shared Redis), killed and torn down by this test."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from booking_service.config import BookingSettings
from booking_service.holds import SeatHolds
from servicekit.cache import create_redis
from servicekit.errors import ServiceUnavailable
from servicekit.testing import wait_until
from servicekit.testing.processes import free_port
from servicekit.testing.redis_servers import data_server, redis_missing, sentinel

pytestmark = pytest.mark.skipif(redis_missing(), reason="needs redis-server")
MASTER_NAME = "mb-test"


@dataclass
class Topology:
    folder: Path
    master_port: int
    replica_port: int
    sentinel_port: int
    processes: dict[str, subprocess.Popen[bytes]]

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(5)

    def sentinel(self) -> Redis:
        return Redis(port=self.sentinel_port, decode_responses=True, socket_timeout=2)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    master, replica, sentinel_port = free_port(), free_port(), free_port()
    processes = {
        "master": data_server(tmp_path, "master", master),
        "replica": data_server(tmp_path, "replica", replica, "--replicaof", "127.0.0.1", str(master)),
        "sentinel": sentinel(tmp_path, "sentinel", sentinel_port, (MASTER_NAME, master)),
    }
    try:
        yield Topology(tmp_path, master, replica, sentinel_port, processes)
    finally:
        for process in processes.values():
            process.kill()
            process.wait(5)


async def _replica_known(topology: Topology) -> bool:
    """The replica is in sync and the sentinel has found it (it can promote it)."""
    try:
        async with Redis(port=topology.replica_port, decode_responses=True) as replica:
            synced = (await replica.info("replication")).get("master_link_status") == "up"
        async with topology.sentinel() as sentinel:
            replicas = await sentinel.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
    except OSError:
        return False
    return synced and bool(replicas)


async def _master_port(topology: Topology) -> int | None:
    async with topology.sentinel() as sentinel:
        address = await sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
    return int(address[1]) if address else None


@pytest.fixture
async def holds(topology: Topology) -> AsyncIterator[tuple[SeatHolds, Redis]]:
    await wait_until(lambda: _replica_known(topology), within=20, interval=0.2, what="replica and sentinel")
    settings = BookingSettings(
        redis_sentinels=f"127.0.0.1:{topology.sentinel_port}",
        redis_sentinel_master=MASTER_NAME,
        redis_prefix=f"sentinel-test:{uuid.uuid4().hex[:8]}:",
    )
    client = create_redis(settings)
    try:
        yield SeatHolds(client, settings), client
    finally:
        await client.aclose()


async def test_holds_go_to_the_master_the_sentinels_name(
    topology: Topology, holds: tuple[SeatHolds, Redis]
) -> None:
    seat_holds, client = holds
    showtime = uuid.uuid4()
    assert await seat_holds.hold(showtime, ["A1"], "first") == []
    assert await seat_holds.hold(showtime, ["A1"], "second") == ["A1"]
    async with Redis(port=topology.master_port, decode_responses=True) as master:
        assert await master.dbsize() >= 1  # written to the master, not through some other route
    assert (await client.info("server"))["tcp_port"] == topology.master_port


async def test_after_the_master_dies_holds_work_again_on_the_promoted_replica(
    topology: Topology, holds: tuple[SeatHolds, Redis]
) -> None:
    seat_holds, client = holds
    before = uuid.uuid4()
    assert await seat_holds.hold(before, ["A1"], "before") == []
    topology.kill("master")

    async def promoted() -> bool:
        return await _master_port(topology) == topology.replica_port

    await wait_until(promoted, within=20, interval=0.2, what="the sentinel's failover")

    async def holds_again() -> bool:
        # A command on a connection to the dead master is a 503 at most (the seat store is
        # unavailable); the pool's next connection asks the sentinels and finds the new master.
        try:
            return await seat_holds.hold(uuid.uuid4(), ["B1"], "after") == []
        except ServiceUnavailable:
            return False

    await wait_until(holds_again, within=10, interval=0.2, what="a hold after the failover")
    after = uuid.uuid4()
    assert await seat_holds.hold(after, ["C1", "C2"], "one") == []
    assert await seat_holds.hold(after, ["C2"], "two") == ["C2"]  # the Lua script, reloaded there
    assert (await client.info("server"))["tcp_port"] == topology.replica_port
