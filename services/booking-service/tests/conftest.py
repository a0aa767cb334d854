from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking_service.config import BookingSettings
from booking_service.main import create_app
from booking_service.models import outbox, processed_events
from movie_service.config import MovieSettings
from movie_service.main import create_app as movie_create_app
from servicekit.db import create_engine, create_sessionmaker
from servicekit.events import new_event
from servicekit.testing import RabbitSpy, app_client, mint_token, test_settings_overrides

Builder = Callable[..., Awaitable[Any]]
ROWS = "ABCDEF"
SEATS_PER_ROW = 10


def make_settings(**extra: Any) -> BookingSettings:
    extra.setdefault("sweeper_interval_seconds", 0.1)
    extra.setdefault("redis_timeout_seconds", 10.0)  # in-process races share one loaded event loop
    # Events flow on wake-ups alone: a path that wrote the outbox without waking the relay would
    # wait for this poll, and its test time out.
    extra.setdefault("outbox_poll_interval", 30.0)
    return BookingSettings(**test_settings_overrides("booking_service", "booking", **extra))


@pytest.fixture(scope="session")
def settings() -> BookingSettings:
    return make_settings(max_pending_bookings_per_user=3)


@pytest.fixture
def settings_with() -> Callable[..., BookingSettings]:
    """This run's settings with some values changed (for a second app)."""
    return make_settings


@pytest.fixture(scope="session")
async def movie(settings: BookingSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The real movie-service, in-process (booking's movie client talks to it over ASGI)."""
    movie_settings = MovieSettings(**test_settings_overrides("movie_service", "movie", seed_demo_data=False))
    app = movie_create_app(movie_settings)
    async with app_client(app) as movie_client:
        yield app, movie_client


@pytest.fixture(scope="session")
def movie_app(movie: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return movie[0]


@pytest.fixture(scope="session")
async def seed_programme(
    movie: tuple[FastAPI, httpx.AsyncClient], settings: BookingSettings
) -> Callable[[datetime], Awaitable[dict[str, Any]]]:
    """Schedule a showtime through movie's admin API: a new movie, theater and auditorium
    with rows A-F of 10 seats (F is VIP at 2000, the rest 1200 VND)."""
    client = movie[1]
    admin = {"Authorization": f"Bearer {mint_token(settings, roles=('user', 'admin'))}"}

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(path, json=body, headers=admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    name = f"Cinema {uuid.uuid4().hex[:8]}"
    address = "12 Trang Tien, Hoan Kiem"
    theater = await post(
        "/theaters", {"name": name, "city": "Hanoi", "address": address, "time_zone": "Asia/Ho_Chi_Minh"}
    )
    rows = [{"seats": SEATS_PER_ROW} for _ in ROWS[:-1]] + [{"seats": SEATS_PER_ROW, "tier": "vip"}]

    async def schedule(starts_at: datetime) -> dict[str, Any]:
        film = await post("/movies", {"title": "The Test Reel", "duration_minutes": 90, "genres": ["drama"]})
        hall = {"theater_id": theater["id"], "name": f"Hall {uuid.uuid4().hex[:8]}", "layout": {"rows": rows}}
        auditorium = await post("/auditoriums", hall)
        body = {
            "movie_id": film["id"],
            "auditorium_id": auditorium["id"],
            "starts_at": starts_at.isoformat(),
            "currency": "VND",
            "prices": {"standard": 1200, "vip": 2000},
        }
        showtime = await post("/showtimes", body)
        return {**showtime, "showtime_id": showtime["id"]}

    return schedule


@pytest.fixture
def make_showtime(seed_programme: Callable[[datetime], Awaitable[dict[str, Any]]]) -> Builder:
    """A fresh showtime of the real movie-service; starts in a day by default."""

    async def build(starts_in: timedelta = timedelta(days=1)) -> dict[str, Any]:
        return await seed_programme(datetime.now(UTC) + starts_in)

    return build


@asynccontextmanager
async def _booking_client(settings: BookingSettings, movie_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, movie_transport=httpx.ASGITransport(app=movie_app))
    async with app_client(app) as client:
        yield client


@pytest.fixture(scope="session")
async def client(settings: BookingSettings, movie_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with _booking_client(settings, movie_app) as c:
        yield c


@pytest.fixture
def booking_client(
    movie_app: FastAPI,
) -> Callable[[BookingSettings], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Another booking app with its own settings (short holds, a proxied Redis, ...)."""
    return lambda settings: _booking_client(settings, movie_app)


@pytest.fixture
def user_headers(settings: BookingSettings) -> Callable[..., dict[str, str]]:
    """Bearer headers of a fresh user (or of ``user_id``)."""

    def build(user_id: uuid.UUID | None = None) -> dict[str, str]:
        user_id = user_id or uuid.uuid4()
        token = mint_token(settings, user_id=user_id, email=f"u{user_id.hex[:8]}@example.com")
        return {"Authorization": f"Bearer {token}"}

    return build


@pytest.fixture(scope="session")
def internal_headers(settings: BookingSettings) -> dict[str, str]:
    return {"X-Internal-Token": settings.internal_token.get_secret_value()}


@pytest.fixture
def book(client: httpx.AsyncClient, user_headers: Callable[..., dict[str, str]]) -> Builder:
    """POST /book for a user (fresh by default); returns the response."""

    async def build(
        showtime: dict[str, Any],
        seats: list[str],
        headers: dict[str, str] | None = None,
        via: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        body = {"showtime_id": showtime["showtime_id"], "seat_ids": seats}
        return await (via or client).post("/book", json=body, headers=headers or user_headers())

    return build


@pytest.fixture(scope="session")
async def db(settings: BookingSettings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(settings: BookingSettings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def forget_run_keys(redis: Redis, settings: BookingSettings) -> Callable[[], Awaitable[int]]:
    """Delete this run's Redis keys only (never FLUSHALL the shared Redis): Redis 'lost' the holds."""

    async def forget() -> int:
        keys = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}lock:*", count=1000)]
        return int(await redis.delete(*keys)) if keys else 0

    return forget


@pytest.fixture
async def spy(settings: BookingSettings) -> AsyncIterator[RabbitSpy]:
    """Sees every booking.* event of this run, and publishes payment events."""
    url = settings.rabbitmq_url.get_secret_value()
    async with RabbitSpy(url, settings.events_exchange, ["booking.*"]) as rabbit:
        yield rabbit


@pytest.fixture
def outbox_events(db: async_sessionmaker[AsyncSession]) -> Callable[[str], Awaitable[list[dict[str, Any]]]]:
    """The events booking wrote to its outbox about a booking, oldest first."""

    async def events(booking_id: str) -> list[dict[str, Any]]:
        stmt = (
            select(outbox.c.payload)
            .where(outbox.c.payload["data"]["booking_id"].astext == booking_id)
            .order_by(outbox.c.created_at)
        )
        async with db() as session:
            return [dict(p) for p in (await session.execute(stmt)).scalars()]

    return events


@pytest.fixture
def consumed(db: async_sessionmaker[AsyncSession]) -> Callable[[dict[str, Any]], Awaitable[bool]]:
    """Whether the booking consumer has committed the handling of an event."""

    async def probe(envelope: dict[str, Any]) -> bool:
        stmt = select(processed_events.c.event_id).where(
            processed_events.c.event_id == uuid.UUID(envelope["event_id"])
        )
        async with db() as session:
            return (await session.execute(stmt)).first() is not None

    return probe


@pytest.fixture
def publish_payment(spy: RabbitSpy) -> Builder:
    """Publish a payment.* event about a booking, as payment-service would; returns the envelope."""

    async def build(event_type: str, booking: dict[str, Any], **extra: Any) -> dict[str, Any]:
        data = {
            "payment_id": str(uuid.uuid4()),
            "booking_id": booking["id"],
            "user_id": str(uuid.uuid4()),
            "user_email": "payer@example.com",
            "amount": booking["total_amount"],
            "currency": booking["currency"],
            **extra,
        }
        envelope = new_event(event_type, "payment-service", data).model_dump(mode="json")
        await spy.publish(event_type, envelope)
        return envelope

    return build
