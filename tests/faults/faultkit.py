"""Building blocks of the fault tests: a background loop for proxies and SMTP, service processes,
a private gateway, users and showtimes. Used through tests/faults/conftest.py's fixtures."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import threading
import uuid
from collections.abc import Awaitable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session
from redis.asyncio import Redis

from servicekit.config import ServiceSettings
from servicekit.testing import TcpProxy, mint_token, wait_until
from servicekit.testing.processes import free_port

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv/bin/python"
RUN_ID = uuid.uuid4().hex[:8]
# A database of their own: services the other tests run in-process (session-long) relay
# the test database's outboxes to their own exchanges, so sharing it would let them
# publish this stack's events where this stack never looks.
DATABASE = os.environ.get("TEST_DATABASE_NAME", "moviebooking_test") + "_faults"
DB_PASSWORD = os.environ.get("TEST_DB_PASSWORD", "dev-only-db-password")
PG = (os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432"))
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBIT_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_PREFIX = f"faults:{RUN_ID}:"
EXCHANGE = f"faults.{RUN_ID}.booking_events"
SETTINGS = ServiceSettings()  # the dev JWT secret and internal token the subprocesses also use
PACKAGES = {"movie": "movie_service", "booking": "booking_service", "payment": "payment_service"}
PACKAGES["notification"] = "notification_service"
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "TMPDIR")


class Background:
    """An event loop on its own thread: the TCP proxies and the SMTP server live here, so they
    keep forwarding while a test blocks or awaits anything."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="faults-background", daemon=True)
        self.redis = TcpProxy("127.0.0.1", 6379)
        self.rabbit = TcpProxy("127.0.0.1", 5672)
        self.mailbox = Mailbox()
        self._smtp: asyncio.base_events.Server | None = None

    def start(self) -> None:
        self.thread.start()
        self.call(self.redis.start())
        self.call(self.rabbit.start())
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
        self._smtp = self.call(
            self.loop.create_server(lambda: SMTP(self.mailbox, hostname="faults"), "127.0.0.1", 0)
        )
        self.mailbox.port = int(self._smtp.sockets[0].getsockname()[1])

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def cut(self, proxy: TcpProxy) -> None:
        await self.run(proxy.cut())

    async def restore(self, proxy: TcpProxy) -> None:
        if proxy._server is None:
            await self.run(proxy.start())

    def stop(self) -> None:
        self.mailbox.gate.set()
        self.call(self.redis.cut())
        self.call(self.rabbit.cut())
        if self._smtp is not None:
            self._smtp.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Mailbox:
    """An aiosmtpd handler: records delivered mails; with ``gate`` cleared it holds each mail
    before answering (the sender waits), and drops it if the sender is gone by then."""

    port: int = 0
    delivered: list[Message] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if not self.gate.is_set():
            self.held.extend(str(rcpt) for rcpt in envelope.rcpt_tos)
            await asyncio.to_thread(self.gate.wait)
            if server.transport is None or server.transport.is_closing():
                return "421 sender gone"
        assert isinstance(envelope.content, bytes)
        self.delivered.append(message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [mail for mail in list(self.delivered) if address in str(mail["To"])]


@dataclass
class Service:
    """One service process, started with the very command its container runs."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.process is not None:
            self.process.wait(timeout=10)  # reap the killed one (it must be gone before a restart)
        command = [str(PYTHON), "-m", "servicekit.serve", PACKAGES[self.name]]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip

    async def wait_ready(self, within: float = 40) -> None:
        async with httpx.AsyncClient(timeout=2) as client:

            async def ready() -> bool:
                if not self.alive:
                    raise AssertionError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
                try:
                    return (await client.get(f"{self.url}/health/live")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(ready, within=within, interval=0.1, what=f"{self.name} to answer")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (uvicorn and anything it started)."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    async def stop(self, within: float = 10) -> None:
        if self.process is None:
            return
        self.kill(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            await asyncio.to_thread(self.process.wait, 10)

    async def restart(self) -> None:
        await self.stop()
        self.start()
        await self.wait_ready()


@dataclass
class User:
    headers: dict[str, str]
    email: str
    user_id: uuid.UUID


def mint_user() -> User:
    """A fresh user with a token signed like auth-service's (auth is not part of these faults)."""
    user_id = uuid.uuid4()
    email = f"f{RUN_ID}-{user_id.hex[:10]}@example.com"
    token = mint_token(SETTINGS, user_id=user_id, email=email)
    return User({"Authorization": f"Bearer {token}"}, email, user_id)


class Stack:
    """movie, booking, payment and notification as processes, wired to the proxies and mailbox."""

    def __init__(self, background: Background, workdir: Path) -> None:
        self.background, self.workdir = background, workdir
        ports = {name: free_port() for name in PACKAGES}
        self.services = {
            name: Service(name, port, {}, workdir / f"{name}.log") for name, port in ports.items()
        }
        for service in self.services.values():
            service.env = self._env(service)
        self.theater_id: str | None = None

    def _env(self, service: Service) -> dict[str, str]:
        role = f"{service.name}_service"
        bg = self.background
        return {
            **{key: os.environ[key] for key in KEPT_ENV if key in os.environ},
            "PORT": str(service.port),
            "HOST": "127.0.0.1",
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "INFO",
            "DATABASE_URL": f"postgresql+asyncpg://{role}:{DB_PASSWORD}@{PG[0]}:{PG[1]}/{DATABASE}",
            "REDIS_URL": f"redis://127.0.0.1:{bg.redis.port}/0",
            "REDIS_PREFIX": REDIS_PREFIX,
            "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{bg.rabbit.port}/",
            "EVENTS_EXCHANGE": EXCHANGE,
            "QUEUE_PREFIX": f"faults.{RUN_ID}.",
            "QUEUE_EXPIRES_MS": "600000",
            "OUTBOX_POLL_INTERVAL": "0.05",
            "CONSUMER_RETRY_BASE_MS": "100",
            "MOVIE_SERVICE_URL": f"http://127.0.0.1:{self.port('movie')}",
            "BOOKING_SERVICE_URL": f"http://127.0.0.1:{self.port('booking')}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(bg.mailbox.port),
            "SEED_DEMO_DATA": "false",
            "HTTP_TIMEOUT_SECONDS": "1",
            "BREAKER_FAIL_MAX": "3",
            "BREAKER_RESET_SECONDS": "2",
            "SWEEPER_INTERVAL_SECONDS": "0.5",
        }

    def private_service(self, name: str, label: str) -> Service:
        """One more process of ``name``, wired like the stack's (a replica the test starts,
        kills and stops itself; ``heal`` leaves it alone)."""
        service = Service(name, free_port(), {}, self.workdir / f"{label}.log")
        service.env = self._env(service)
        return service

    def port(self, name: str) -> int:
        return self.services[name].port

    def url(self, name: str) -> str:
        return self.services[name].url

    async def start(self) -> None:
        for service in self.services.values():
            service.start()
        await asyncio.gather(*(s.wait_ready() for s in self.services.values()))

    async def heal(self) -> None:
        """Every proxy up, the mail gate open, every service alive and answering."""
        self.background.mailbox.gate.set()
        await self.background.restore(self.background.redis)
        await self.background.restore(self.background.rabbit)
        dead = [s for s in self.services.values() if not s.alive]
        for service in dead:
            service.start()
        await asyncio.gather(*(s.wait_ready() for s in self.services.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.services.values()), return_exceptions=True)
        await forget_redis_keys()
        await delete_exchange()

    async def showtime(self, starts_in: timedelta = timedelta(days=1)) -> dict[str, Any]:
        """A new showtime (rows A-C of 10 standard seats at 1200 VND) via movie's admin API."""
        admin = {"Authorization": f"Bearer {mint_token(SETTINGS, roles=('user', 'admin'))}"}
        async with httpx.AsyncClient(base_url=self.url("movie"), headers=admin, timeout=10) as movie:
            if self.theater_id is None:
                theater = {"name": f"Faults {RUN_ID}", "city": "Hanoi", "time_zone": "Asia/Ho_Chi_Minh"}
                self.theater_id = (await _created(movie.post("/theaters", json=theater)))["id"]
            film = {"title": f"Fault Reel {RUN_ID}", "duration_minutes": 90, "genres": ["drama"]}
            movie_id = (await _created(movie.post("/movies", json=film)))["id"]
            layout = {"rows": [{"seats": 10} for _ in range(3)]}
            hall = {"theater_id": self.theater_id, "name": f"Hall {uuid.uuid4().hex[:8]}", "layout": layout}
            auditorium_id = (await _created(movie.post("/auditoriums", json=hall)))["id"]
            show = {
                "movie_id": movie_id,
                "auditorium_id": auditorium_id,
                "starts_at": (datetime.now(UTC) + starts_in).isoformat(),
                "currency": "VND",
                "prices": {"standard": 1200},
            }
            return await _created(movie.post("/showtimes", json=show))

    async def metric(self, name: str, metric: str) -> float:
        """The sum of a metric's samples on one service's /metrics."""
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{self.url(name)}/metrics")).text
        samples = [line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(metric)]
        return sum(float(value) for key, value in samples if key.split("{")[0] == metric)


async def _created(request: Awaitable[httpx.Response]) -> dict[str, Any]:
    response = await request
    assert response.status_code == 201, response.text
    return dict(response.json())


async def forget_redis_keys() -> int:
    """Delete this run's Redis keys only (never FLUSHALL the shared Redis)."""
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{REDIS_PREFIX}*", count=1000)]
        return int(await redis.delete(*keys)) if keys else 0
    finally:
        await redis.aclose()


async def delete_exchange() -> None:
    connection = await aio_pika.connect(RABBIT_URL)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(EXCHANGE)
