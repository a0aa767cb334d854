"""The production overlay's Redis pods, run here as processes: the start scripts the
StatefulSet runs (k8s/components/data-ha/redis-scripts) bring up a master, two replicas and
three sentinels; the pod of the master is lost (its Redis and its sentinel killed), the two
sentinels left promote a replica, the services' client follows, and the lost pod, started
again by the same script, rejoins as a replica of the new master.

Each "pod" has its own loopback address (127.0.0.2-4) standing for its host name, with the
same ports on each, as in the cluster; a small `redis-server` wrapper binds each process to
its address (in a pod it listens on all of the pod's). Never the machine's shared Redis.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from booking_service.config import BookingSettings
from booking_service.holds import SeatHolds
from servicekit.cache import create_redis
from servicekit.errors import ServiceUnavailable
from servicekit.testing import wait_until
from servicekit.testing.processes import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
SCRIPTS = Path(__file__).resolve().parents[2] / "k8s/components/data-ha/redis-scripts"
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
MASTER_NAME = "mb-k8s-test"
PASSWORD = "redis-" + uuid.uuid4().hex
SENTINEL_PASSWORD = "sentinel-" + uuid.uuid4().hex


@dataclass
class Pods:
    folder: Path
    redis_port: int
    sentinel_port: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, host: str, data_dir: Path) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": f"{self.folder / 'bin'}:{os.environ['PATH']}",
            "PEERS": " ".join(HOSTS),
            "REDIS_PORT": str(self.redis_port),
            "SENTINEL_PORT": str(self.sentinel_port),
            "MASTER_NAME": MASTER_NAME,
            "REDIS_PASSWORD": PASSWORD,
            "REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD,
            "ANNOUNCE_HOST": host,
            "DATA_DIR": str(data_dir),
        }

    def start(self, host: str) -> None:
        """Start a pod's two containers: its Redis, then its sentinel, each by its script."""
        for container, script in (("redis", "start-redis.sh"), ("sentinel", "start-sentinel.sh")):
            data_dir = self.folder / host / container
            data_dir.mkdir(parents=True, exist_ok=True)
            with (self.folder / f"{host}-{container}.log").open("ab") as log:
                self.processes[f"{host}/{container}"] = subprocess.Popen(
                    ["sh", str(SCRIPTS / script)], env=self.env(host, data_dir), stdout=log, stderr=log
                )

    def lose(self, host: str) -> None:
        for container in ("redis", "sentinel"):
            process = self.processes.pop(f"{host}/{container}")
            process.send_signal(signal.SIGKILL)
            process.wait(5)

    def sentinel(self, host: str) -> Redis:
        return Redis(
            host=host,
            port=self.sentinel_port,
            password=SENTINEL_PASSWORD,
            decode_responses=True,
            socket_timeout=2,
        )

    def redis(self, host: str) -> Redis:
        return Redis(
            host=host, port=self.redis_port, password=PASSWORD, decode_responses=True, socket_timeout=2
        )


@pytest.fixture
def pods(tmp_path: Path) -> Iterator[Pods]:
    (tmp_path / "bin").mkdir()
    wrapper = tmp_path / "bin/redis-server"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("redis-server")} "$@" --bind "$ANNOUNCE_HOST"\n')
    wrapper.chmod(0o755)
    running = Pods(tmp_path, free_port(), free_port())
    try:
        for host in HOSTS:
            running.start(host)
        yield running
    finally:
        for process in running.processes.values():
            process.kill()
            process.wait(5)


async def settled(pods: Pods, hosts: list[str], master: str | None = None) -> str | None:
    """The master every sentinel on `hosts` names, once each also sees the other sentinels and
    the master's replicas in sync; None until then."""
    named = set()
    try:
        for host in hosts:
            async with pods.sentinel(host) as sentinel:
                info = await sentinel.sentinel_master(MASTER_NAME)
            if int(info["num-other-sentinels"]) < len(hosts) - 1 or int(info["num-slaves"]) < len(hosts) - 1:
                return None
            named.add(info["ip"])
        (current,) = named
        async with pods.redis(current) as redis:
            replication = await redis.info("replication")
    except (OSError, RedisConnectionError, ValueError):  # a process down, or no single master yet
        return None
    in_sync = replication["role"] == "master" and int(replication["connected_slaves"]) >= len(hosts) - 1
    return current if in_sync and current != master else None


async def test_the_pods_scripts_survive_the_loss_of_the_masters_pod(pods: Pods) -> None:
    async def first_master() -> str | None:
        return await settled(pods, HOSTS)

    assert (
        await wait_until(first_master, within=60, interval=0.5, what="master, replicas, sentinels")
        == HOSTS[0]
    )
    settings = BookingSettings(
        redis_url=f"redis://:{PASSWORD}@unused:6379/0",
        redis_sentinels=",".join(f"{host}:{pods.sentinel_port}" for host in HOSTS),
        redis_sentinel_master=MASTER_NAME,
        redis_sentinel_password=SENTINEL_PASSWORD,
        redis_prefix=f"k8s-sentinel-test:{uuid.uuid4().hex[:8]}:",
    )
    client = create_redis(settings)
    try:
        holds = SeatHolds(client, settings)
        assert await holds.hold(uuid.uuid4(), ["A1"], "before") == []
        pods.lose(HOSTS[0])

        async def promoted() -> str | None:
            return await settled(pods, HOSTS[1:], master=HOSTS[0])

        new_master = await wait_until(promoted, within=60, interval=0.5, what="the sentinels' failover")

        async def holds_again() -> bool:
            try:
                return await holds.hold(uuid.uuid4(), ["B1"], "after") == []
            except ServiceUnavailable:
                return False

        await wait_until(holds_again, within=15, interval=0.2, what="a hold after the failover")
        pods.start(HOSTS[0])

        async def rejoined() -> bool:
            try:
                async with pods.redis(HOSTS[0]) as redis:
                    replication = await redis.info("replication")
            except (OSError, RedisConnectionError):
                return False
            return replication.get("master_host") == new_master and replication["master_link_status"] == "up"

        await wait_until(rejoined, within=60, interval=0.5, what="the lost pod back as a replica")
    finally:
        await client.aclose()
