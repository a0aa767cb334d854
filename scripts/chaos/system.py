"""The five services (booking and payment as two replicas each), the mail catcher and the
NGINX gateway, started by scripts/run_local.sh against the private data tier.

- Every service's DATABASE_URL lists both PostgreSQL nodes with
  ``target_session_attrs=read-write`` (DATABASE_HOSTS), except payment's: it reaches the
  writer through a TCP proxy this process runs (the proxy, then the standby), so the network
  between payment and the primary can be cut (scenario 5) without touching anyone else.
- Redis through the three sentinels; RabbitMQ through the list of the three nodes.
- Payment's and movie's calls to booking go through NGINX's booking balancer
  (BOOKING_BALANCER_PORT): a killed booking replica is skipped there as it is at the gateway.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from chaos.topology import REDIS_MASTER_NAME, Ports, Topology
from servicekit.testing import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "moviebooking"
# Test-harness settings, as scripts/test.sh gives its system: one address for every client,
# and every purchase that fails leaves a pending booking behind until its hold expires.
HARNESS_ENV = (
    "LOGIN_MAX_FAILURES_PER_IP=1000000 MAX_PENDING_BOOKINGS_PER_USER=100000 "
    "RECONCILER_INTERVAL_SECONDS=2 IDEMPOTENCY_LOCK_SECONDS=10"
)


class System:
    def __init__(self, folder: Path, topology: Topology, ports: Ports) -> None:
        self.run_dir, self.topology, self.ports = folder / "system", topology, ports
        self.log = folder / "run_local.log"
        self.payment_db_proxy = TcpProxy("127.0.0.1", topology.writer_port, ports.payment_db_proxy)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.at(80)}"

    @property
    def mail_index(self) -> Path:
        return self.run_dir / "mail" / "index.jsonl"

    def settings(self) -> dict[str, str]:
        """scripts/run_local.sh's settings for this run (recorded in its instance.env)."""
        at, topology = self.ports.at, self.topology
        sentinels = ",".join(f"127.0.0.1:{port}" for port in self.ports.sentinels)
        redis = f"REDIS_SENTINELS={sentinels} REDIS_SENTINEL_MASTER={REDIS_MASTER_NAME}"
        return {
            "RUN_DIR": str(self.run_dir), "DB_NAME": DB_NAME, "DB_FRESH": "1",
            "PGHOST": "127.0.0.1", "PGPORT": str(topology.writer_port),
            "DATABASE_HOSTS": ",".join(topology.pg_hosts),
            "PAYMENT_DATABASE_HOSTS": f"127.0.0.1:{self.ports.payment_db_proxy},{topology.pg_hosts[1]}",
            "REDIS_URL": f"redis://127.0.0.1:{self.ports.redis[0]}/0",  # with sentinels: its db only
            "RABBITMQ_URL": ",".join(topology.rabbit.urls),
            "GATEWAY_PORT": str(at(80)), "AUTH_PORT": str(at(1)), "MOVIE_PORT": str(at(2)),
            "BOOKING_PORT": str(at(3)), "PAYMENT_PORT": str(at(4)), "NOTIFICATION_PORT": str(at(5)),
            "SMTP_PORT": str(at(25)), "BOOKING_BALANCER_PORT": str(at(90)),
            "BOOKING_REPLICAS": "2", "PAYMENT_REPLICAS": "2",
            "AUTH_TOKEN_RATE": "100r/s", "AUTH_TOKEN_BURST": "200",
            "EXTRA_SERVICE_ENV": f"{redis} {HARNESS_ENV}",
        }  # fmt: skip

    async def start(self) -> None:
        await self.payment_db_proxy.start()
        await self.up()

    async def up(self) -> None:
        """run_local.sh up: everything the first time; later only the parts that are not running."""
        await asyncio.to_thread(self._run_local, "up")

    def follow_writer(self) -> None:
        """Payment's proxy forwards new connections to the node that takes writes now."""
        self.payment_db_proxy.target = ("127.0.0.1", self.topology.writer_port)

    async def down(self) -> None:
        await asyncio.to_thread(self._run_local, "down")
        await self.payment_db_proxy.cut()

    def _run_local(self, command: str) -> None:
        env = {**os.environ, **self.settings()}
        with self.log.open("ab") as log:
            done = subprocess.run(
                ["bash", str(ROOT / "scripts/run_local.sh"), command], env=env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, timeout=300,
            )  # fmt: skip
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"run_local.sh {command} failed:\n{tail}")

    def kill_part(self, part: str) -> None:
        """kill -9 one part's whole process group (uvicorn and all): a replica crashes."""
        pid = int((self.run_dir / "pids" / f"{part}.pid").read_text().strip())
        os.killpg(pid, signal.SIGKILL)
