from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import aio_pika
import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from notification_service.config import NotificationSettings
from notification_service.main import create_app
from servicekit.events import new_event
from servicekit.testing import (
    RabbitSpy,
    TcpProxy,
    app_client,
    mint_token,
    test_settings_overrides,
    wait_until,
)

CONSUMER = "notification-service.events"


@dataclass
class Mail:
    """One message the test SMTP server accepted, and the connection (client address) it came on."""

    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any = None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, kind: str) -> str:
        body = self.message.get_body((kind,))
        assert body is not None, f"no text/{kind} part"
        return str(body.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpRecorder:
    """An aiosmtpd handler that records what arrives and on which connection.

    ``refuse(n)`` answers 451 to the next n mails; ``hang_up_at(command)`` closes the
    connection without an answer at the next MAIL or DATA (``"MAIL 421"``: answers 421 first);
    ``before_answer`` runs once each, after the next mail is recorded and before its 250 goes out.
    """

    mails: list[Mail] = field(default_factory=list)
    port: int = 0
    refusals: int = 0
    refused: int = 0
    open_peers: set[Any] = field(default_factory=set)  # connections open now
    quit_peers: set[Any] = field(default_factory=set)  # connections the client ended with QUIT
    hang_ups: list[str] = field(default_factory=list)
    transports: dict[Any, asyncio.BaseTransport] = field(default_factory=dict)
    before_answer: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def handle_MAIL(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.hang_ups and self.hang_ups[0].startswith("MAIL"):
            answer = "421 4.4.2 Idle too long, closing" if self.hang_ups.pop(0) == "MAIL 421" else None
            return self._hang_up(server, answer)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.hang_ups and self.hang_ups[0] == "DATA":
            self.hang_ups.pop(0)
            return self._hang_up(server, None)  # the whole message arrived; no answer to it
        if self.refusals > 0:
            self.refusals -= 1
            self.refused += 1
            return "451 4.3.0 Mailbox busy, try again later"
        message = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(Mail(list(envelope.rcpt_tos), message, session.peer))
        if self.before_answer:
            await self.before_answer.pop(0)()
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.quit_peers.add(session.peer)
        return "221 Bye"

    def _hang_up(self, server: SMTP, answer: str | None) -> str:
        transport = server.transport
        assert transport is not None
        if answer is None:
            transport.close()
            return "250 never sent"
        asyncio.get_running_loop().call_soon(transport.close)  # after the answer is written
        return answer

    def refuse(self, count: int) -> None:
        self.refusals = count

    def hang_up_at(self, command: str) -> None:
        self.hang_ups.append(command)

    def hang_up(self, peer: Any) -> None:
        """Close one open connection from the server's side (as an idle timeout does)."""
        self.transports[peer].close()

    def to(self, address: str) -> list[Mail]:
        return [mail for mail in self.mails if address in mail.rcpt_tos]


class RecordingSMTP(SMTP):
    """aiosmtpd's server, telling the recorder which connections are open."""

    def __init__(self, recorder: SmtpRecorder, **kwargs: Any) -> None:
        super().__init__(recorder, **kwargs)
        self.recorder = recorder

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.session is not None
        self.recorder.open_peers.add(self.session.peer)
        self.recorder.transports[self.session.peer] = transport

    def connection_lost(self, error: Exception | None) -> None:
        assert self.session is not None
        self.recorder.open_peers.discard(self.session.peer)
        self.recorder.transports.pop(self.session.peer, None)
        super().connection_lost(error)


@pytest.fixture(scope="session")
async def smtp() -> AsyncIterator[SmtpRecorder]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    recorder = SmtpRecorder()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: RecordingSMTP(recorder, hostname="smtp.test", loop=loop), host="127.0.0.1", port=0
    )
    recorder.port = server.sockets[0].getsockname()[1]
    yield recorder
    server.close()
    await server.wait_closed()


@pytest.fixture(scope="session")
async def smtp_proxy(smtp: SmtpRecorder) -> AsyncIterator[TcpProxy]:
    """The service reaches the test SMTP server through this proxy, so a test can cut it."""
    proxy = TcpProxy("127.0.0.1", smtp.port)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.fixture(scope="session")
def make_settings(smtp_proxy: TcpProxy) -> Callable[..., NotificationSettings]:
    def build(**extra: Any) -> NotificationSettings:
        overrides = test_settings_overrides("notification_service", "notification", **extra)
        overrides.setdefault("smtp_port", smtp_proxy.port)
        overrides.setdefault("consumer_max_attempts", 4)
        return NotificationSettings(**overrides)

    return build


@pytest.fixture(scope="session")
def settings(make_settings: Callable[..., NotificationSettings]) -> NotificationSettings:
    return make_settings()


@pytest.fixture(scope="session")
def isolated_settings(
    make_settings: Callable[..., NotificationSettings],
) -> Callable[..., NotificationSettings]:
    """Settings with their own exchange and queues: no other app in this run sees their events."""

    def build(**extra: Any) -> NotificationSettings:
        run = uuid.uuid4().hex[:8]
        names = {"events_exchange": f"test.{run}.booking_events", "queue_prefix": f"test.{run}."}
        return make_settings(**names, **extra)

    return build


async def consuming(settings: NotificationSettings) -> bool:
    """True once the service's consumer is attached to its queue (bound before it consumes)."""
    connection = await aio_pika.connect(settings.rabbitmq_url.get_secret_value())
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(f"{settings.queue_prefix}{CONSUMER}", passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return bool(queue.declaration_result.consumer_count)


@asynccontextmanager
async def run_service(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(app) as client:
        await wait_until(lambda: consuming(app.state.settings), within=15, what="consumer attached")
        yield client


@pytest.fixture(scope="session")
def running() -> Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with running(app) as client``: the app started and its consumer attached."""
    return run_service


@pytest.fixture(scope="session")
async def client(settings: NotificationSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with run_service(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
async def spy(settings: NotificationSettings) -> AsyncIterator[RabbitSpy]:
    async with RabbitSpy(settings.rabbitmq_url.get_secret_value(), settings.events_exchange, []) as s:
        yield s


@pytest.fixture(scope="session")
async def db(settings: NotificationSettings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(settings.database_url.get_secret_value())
    yield engine
    await engine.dispose()


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    headers: dict[str, str]


@pytest.fixture
def new_user(settings: NotificationSettings) -> Callable[..., User]:
    def build(roles: tuple[str, ...] = ("user",)) -> User:
        user_id, email = uuid.uuid4(), f"n{uuid.uuid4().hex[:12]}@example.com"
        token = mint_token(settings, user_id=user_id, roles=roles, email=email)
        return User(user_id, email, {"Authorization": f"Bearer {token}"})

    return build


def event_data(event_type: str, user: User, **overrides: Any) -> dict[str, Any]:
    """A payload exactly as contracts.md describes ``event_type``."""
    booking = {"booking_id": str(uuid.uuid4()), "user_id": str(user.id), "user_email": user.email}
    booking_seats = {**booking, "showtime_id": str(uuid.uuid4()), "seats": ["C4", "C5"]}
    payment = {**booking, "payment_id": str(uuid.uuid4()), "amount": 2500, "currency": "USD"}
    starts_at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=19, minute=30, second=0, microsecond=0)
    payloads: dict[str, dict[str, Any]] = {
        "user.registered": {
            "user_id": str(user.id),
            "email": user.email,
            "username": "moviefan",
            "full_name": "Ann Lee",
            "phone_number": None,
        },
        "booking.confirmed": {
            **booking_seats,
            "movie_title": "Dune: Part Two",
            "theater_name": "Riverside Cinema",
            "auditorium_name": "Hall 3",
            "starts_at": starts_at.isoformat(),
            "total_amount": 2500,
            "currency": "USD",
            "payment_id": str(uuid.uuid4()),
            "theater_address": "12 Riverside Walk, Hanoi",
            "tickets": [{"code": secrets.token_urlsafe(32), "seat": seat} for seat in ("C4", "C5")],
        },
        "booking.cancelled": {
            **booking_seats,
            "total_amount": 2500,
            "currency": "USD",
            "reason": "user_cancelled",
            "refund_required": True,
            "payment_id": str(uuid.uuid4()),
        },
        "booking.expired": {
            **booking_seats,
            "movie_title": "Dune: Part Two",
            "starts_at": starts_at.isoformat(),
        },
        "payment.completed": {**payment, "payment_method": "credit_card", "card_last4": "4242"},
        "payment.failed": {**payment, "reason": "card_declined"},
        "payment.refunded": {**payment, "reason": "booking_cancelled"},
    }
    return {**payloads[event_type], **overrides}


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return new_event(event_type, "tests", data).model_dump(mode="json")


Publish = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    """``make_event(event_type, user, **data_overrides)``: a fresh envelope as producers send it."""

    def build(event_type: str, user: User, **overrides: Any) -> dict[str, Any]:
        return envelope(event_type, event_data(event_type, user, **overrides))

    return build


@pytest.fixture
def publish(spy: RabbitSpy, make_event: Callable[..., dict[str, Any]]) -> Publish:
    """Publish ``event_type`` for ``user`` (payload overrides as keywords); returns the envelope."""

    async def send(event_type: str, user: User, **overrides: Any) -> dict[str, Any]:
        event = make_event(event_type, user, **overrides)
        await spy.publish(event_type, event)
        return event

    return send


@pytest.fixture
def mails(smtp: SmtpRecorder) -> Callable[..., Awaitable[list[Mail]]]:
    """Wait until ``count`` mails reached ``address``; return them."""

    async def wait(address: str, count: int = 1, within: float = 10) -> list[Mail]:
        async def arrived() -> list[Mail] | None:
            found = smtp.to(address)
            return found if len(found) >= count else None

        return await wait_until(arrived, within=within, what=f"{count} mail(s) to {address}")

    return wait


@pytest.fixture
def processed(db: AsyncEngine) -> Callable[[str], Awaitable[bool]]:
    """Whether the consumer committed ``event_id`` to its ledger."""

    async def probe(event_id: str) -> bool:
        async with db.connect() as conn:
            found = await conn.execute(
                text("SELECT 1 FROM notification.processed_events WHERE event_id = :id"), {"id": event_id}
            )
            return found.first() is not None

    return probe


class DeadLetters:
    """Reads (and keeps) what reached the consumer's dead-letter queue."""

    def __init__(self, settings: NotificationSettings) -> None:
        self.settings = settings
        self.bodies: list[bytes] = []

    async def drain(self) -> list[bytes]:
        connection = await aio_pika.connect(self.settings.rabbitmq_url.get_secret_value())
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{self.settings.queue_prefix}{CONSUMER}.dlq", passive=True)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                self.bodies.append(message.body)
        return self.bodies

    async def holds(self, marker: str) -> bool:
        return any(marker.encode() in body for body in await self.drain())

    async def publish_raw(self, routing_key: str, body: bytes) -> None:
        connection = await aio_pika.connect(self.settings.rabbitmq_url.get_secret_value())
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.settings.events_exchange)
            await exchange.publish(aio_pika.Message(body), routing_key=routing_key)


@pytest.fixture(scope="session")
def dead_letters(settings: NotificationSettings) -> DeadLetters:
    return DeadLetters(settings)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def counter() -> Callable[..., float]:
    """The current value of a Prometheus sample (0 when never incremented)."""
    return metric
