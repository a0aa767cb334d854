"""The data tier of a chaos run, every node a private process on its own port (never the
machine's shared servers): a PostgreSQL primary with a synchronous streaming standby, Redis
master + replica + three sentinels, and a three-node RabbitMQ cluster."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chaos.procs import Processes
from servicekit.testing.postgres import StreamingPair, private_folder
from servicekit.testing.rabbit_cluster import RabbitCluster
from servicekit.testing.redis_servers import data_server, sentinel

REDIS_MASTER_NAME = "chaos"
SETUP_SECONDS = 90.0  # bound of each wait for a node to be ready


@dataclass(frozen=True)
class Ports:
    """Every port of a run, from one base (default 26000)."""

    base: int

    def at(self, offset: int) -> int:
        return self.base + offset

    @property
    def pg(self) -> tuple[int, int]:
        return self.at(432), self.at(433)

    @property
    def payment_db_proxy(self) -> int:
        return self.at(434)

    @property
    def redis(self) -> tuple[int, int]:
        return self.at(379), self.at(378)

    @property
    def sentinels(self) -> tuple[int, ...]:
        return self.at(380), self.at(381), self.at(382)

    @property
    def rabbit_epmd(self) -> int:
        return self.at(600)

    @property
    def rabbit_nodes(self) -> list[tuple[int, int]]:
        """(AMQP, distribution) of nodes 1-3: base + 601-603 and base + 611-613."""
        return [(self.at(600 + i), self.at(610 + i)) for i in (1, 2, 3)]


class Topology:
    def __init__(self, folder: Path, procs: Processes, ports: Ports) -> None:
        self.folder, self.procs, self.ports = folder, procs, ports
        self.pg = StreamingPair(private_folder("pg-", parent=folder), *ports.pg)
        self.writer = "primary"  # the PostgreSQL node that takes writes now
        self.rabbit = RabbitCluster(
            folder / "rabbitmq", ports.rabbit_epmd, ports.rabbit_nodes, name="chaos", on_start=procs.adopt
        )
        (folder / "redis").mkdir()

    @property
    def writer_port(self) -> int:
        return self.pg.primary_port if self.writer == "primary" else self.pg.standby_port

    @property
    def pg_hosts(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports.pg]

    def dsn(self, database: str) -> str:
        """The superuser's DSN of ``database`` on the node that takes writes now."""
        return f"postgresql://postgres@127.0.0.1:{self.writer_port}/{database}"

    async def start(self) -> None:
        await asyncio.gather(
            asyncio.to_thread(self.pg.create, "-c max_connections=200"),
            self.start_redis(),
            asyncio.to_thread(self.rabbit.start),
        )

    async def start_redis(self) -> None:
        folder, (master, replica) = self.folder / "redis", self.ports.redis
        self.procs.adopt("redis-master", data_server(folder, "master", master))
        self.procs.adopt(
            "redis-replica", data_server(folder, "replica", replica, "--replicaof", "127.0.0.1", str(master))
        )
        for index, port in enumerate(self.ports.sentinels, 1):
            watched = (REDIS_MASTER_NAME, master)
            self.procs.adopt(
                f"sentinel-{index}", sentinel(folder, f"sentinel-{index}", port, watched, quorum=2)
            )
        await _poll(
            self._sentinels_ready, "the Redis replica and three sentinels that know it and each other"
        )

    async def _sentinels_ready(self) -> bool:
        for port in self.ports.sentinels:
            async with Redis(port=port, decode_responses=True, socket_timeout=2) as one:
                replicas = await one.execute_command("SENTINEL", "REPLICAS", REDIS_MASTER_NAME)
                peers = await one.execute_command("SENTINEL", "SENTINELS", REDIS_MASTER_NAME)
            if len(replicas) != 1 or len(peers) != len(self.ports.sentinels) - 1:
                return False
        async with Redis(port=self.ports.redis[1], decode_responses=True) as replica:
            return (await replica.info("replication")).get("master_link_status") == "up"

    async def redis_master(self) -> int | None:
        """The master's port, as the first sentinel that answers names it."""
        for port in self.ports.sentinels:
            try:
                async with Redis(port=port, decode_responses=True, socket_timeout=2) as one:
                    address = await one.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", REDIS_MASTER_NAME
                    )
                return int(address[1])
            except (OSError, RedisError):
                continue
        return None

    def fail_over_postgres(self) -> None:
        """The HA manager's part once the writer is lost: promote the other node (blocking)."""
        self.writer = "standby" if self.writer == "primary" else "primary"
        self.pg.promote(self.writer)

    async def stop(self) -> None:
        await asyncio.to_thread(self.rabbit.stop_all)
        await asyncio.to_thread(self.pg.stop_all)
        shutil.rmtree(self.pg.folder, ignore_errors=True)


async def _poll(ready: Callable[[], Awaitable[bool]], what: str, within: float = SETUP_SECONDS) -> None:
    """Until ``ready()`` is true; a refused connection counts as not yet."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(OSError, RedisError):
            if await ready():
                return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"not ready within {within:.0f} s: {what}")
