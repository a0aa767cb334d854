"""The services behind PgBouncer in transaction pooling mode (DB_BEHIND_PGBOUNCER=true).

PgBouncer gives each transaction, and each statement outside one, whichever server
connection of its pool is free. What a service keeps on "its" connection across
transactions (prepared statements, a search_path sent at connect) is then lost or refused.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pgbouncerkit import PgBouncer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from booking_service.config import BookingSettings
from booking_service.main import create_app as booking_app
from movie_service.config import MovieSettings
from movie_service.main import create_app as movie_app
from payment_service.config import PaymentSettings
from payment_service.main import create_app as payment_app
from servicekit import db
from servicekit.config import ServiceSettings
from servicekit.db import create_engine
from servicekit.testing import app_client, mint_token, test_settings_overrides, wait_until

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {"auth": "auth_service", "movie": "movie_service", "booking": "booking_service"}
SCHEMAS |= {"payment": "payment_service", "notification": "notification_service"}
GOOD_CARD = "4242424242424242"
COUNT_BOOKINGS = text("SELECT count(*) FROM bookings WHERE user_id = :user")


def behind(bouncer: PgBouncer, role: str, **extra: Any) -> dict[str, Any]:
    """Settings overrides of a service reaching the test database through ``bouncer``."""
    schema = {r: s for s, r in SCHEMAS.items()}[role]
    extra = {"db_behind_pgbouncer": True, "db_pool_size": 4, "db_max_overflow": 0, **extra}
    return test_settings_overrides(role, schema, database_url=bouncer.url(role), **extra)


# --- what breaks without the setting, shown on one engine -------------------------------


@pytest.fixture(scope="module")
def lenient(pgbouncers: Callable[..., PgBouncer]) -> PgBouncer:
    """A PgBouncer that drops the search_path startup parameter instead of refusing it, so a
    service without the setting gets as far as its statements."""
    return pgbouncers(2, ignore_startup_parameters="search_path")


async def test_without_the_setting_pgbouncer_refuses_the_connection(pgbouncer: PgBouncer) -> None:
    settings = ServiceSettings(**behind(pgbouncer, "booking_service", db_behind_pgbouncer=False))
    engine = create_engine(settings)
    try:
        with pytest.raises(DBAPIError, match="unsupported startup parameter: search_path"):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def run_on_two_server_connections(bouncer: PgBouncer, setting: bool, autocommit: bool) -> None:
    """One statement, run twice by one client, on two server connections of PgBouncer.

    PgBouncer hands out the server connection released last (LIFO): another client that
    begins a transaction right after the first client's statement takes that server, so
    the first client's next statement runs on the pool's other one."""
    overrides = behind(bouncer, "booking_service", db_behind_pgbouncer=setting, db_pool_size=2)
    engine = create_engine(ServiceSettings(**overrides))
    runner = engine.execution_options(isolation_level="AUTOCOMMIT") if autocommit else engine
    user = {"user": uuid.uuid4()}
    try:
        async with runner.connect() as first, engine.connect() as other:
            await first.execute(COUNT_BOOKINGS, user)
            await first.commit()
            await other.execute(text("SELECT 1"))  # holds the server the first statement ran on
            await first.execute(COUNT_BOOKINGS, user)
            await first.commit()
            await other.rollback()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
async def test_without_the_setting_a_prepared_statement_is_missing_on_the_next_server(
    lenient: PgBouncer, autocommit: bool
) -> None:
    with pytest.raises(DBAPIError, match=r"prepared statement \"?__asyncpg_stmt_\w+\"? does not exist"):
        await run_on_two_server_connections(lenient, setting=False, autocommit=autocommit)


@pytest.mark.parametrize("autocommit", [False, True], ids=["transaction", "autocommit"])
async def test_with_the_setting_a_statement_runs_on_any_server(lenient: PgBouncer, autocommit: bool) -> None:
    await run_on_two_server_connections(lenient, setting=True, autocommit=autocommit)


# --- the schema comes from the role -----------------------------------------------------


@pytest.mark.parametrize("schema", sorted(SCHEMAS))
async def test_each_role_resolves_names_in_its_own_schema(pgbouncer: PgBouncer, schema: str) -> None:
    engine = create_engine(ServiceSettings(**behind(pgbouncer, SCHEMAS[schema])))
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(text("SELECT current_schema()"))
        assert found == schema
    finally:
        await engine.dispose()


async def test_a_role_whose_search_path_is_another_schema_is_refused(pgbouncer: PgBouncer) -> None:
    overrides = {**behind(pgbouncer, "movie_service"), "db_schema": "booking"}
    engine = create_engine(ServiceSettings(**overrides))
    try:
        with pytest.raises(db.SchemaNotOnSearchPath, match="'movie', not 'booking'"):
            async with engine.connect():
                pass
    finally:
        await engine.dispose()


def test_migrations_run_through_pgbouncer(pgbouncer: PgBouncer) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": pgbouncer.url("booking_service"),
        "DB_BEHIND_PGBOUNCER": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "servicekit.migrations", "booking_service"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# --- a purchase, many at once, through two server connections per service ---------------


class Purchase:
    """movie-service, booking-service and payment-service in-process, each behind PgBouncer."""

    def __init__(
        self, movie: httpx.AsyncClient, booking: httpx.AsyncClient, payment: httpx.AsyncClient
    ) -> None:
        self.movie, self.booking, self.payment = movie, booking, payment
        self.settings = ServiceSettings()

    def user(self) -> dict[str, str]:
        user_id = uuid.uuid4()
        token = mint_token(self.settings, user_id=user_id, email=f"u{user_id.hex[:8]}@example.com")
        return {"Authorization": f"Bearer {token}"}

    async def showtime(self) -> str:
        admin = {"Authorization": f"Bearer {mint_token(self.settings, roles=('user', 'admin'))}"}

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await self.movie.post(path, json=body, headers=admin)
            assert response.status_code == 201, response.text
            return dict(response.json())

        theater = await post(
            "/theaters",
            {"name": f"PgBouncer {uuid.uuid4().hex[:8]}", "city": "Hanoi", "time_zone": "Asia/Ho_Chi_Minh"},
        )
        film = await post("/movies", {"title": "Pooled", "duration_minutes": 90, "genres": ["drama"]})
        layout = {"rows": [{"seats": 10} for _ in range(5)] + [{"seats": 10, "tier": "vip"}]}
        hall = await post("/auditoriums", {"theater_id": theater["id"], "name": "Hall 1", "layout": layout})
        starts_at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        prices = {"standard": 1200, "vip": 2000}
        body = {"movie_id": film["id"], "auditorium_id": hall["id"], "starts_at": starts_at, "prices": prices}
        return str((await post("/showtimes", {**body, "currency": "VND"}))["id"])

    async def book(self, showtime_id: str, seats: list[str], user: dict[str, str]) -> httpx.Response:
        return await self.booking.post(
            "/book", json={"showtime_id": showtime_id, "seat_ids": seats}, headers=user
        )

    async def pay(self, booking_id: str, user: dict[str, str]) -> httpx.Response:
        body = {"booking_id": booking_id, "payment_method": "credit_card", "card_number": GOOD_CARD}
        headers = {**user, "Idempotency-Key": uuid.uuid4().hex}
        return await self.payment.post("/process", json=body, headers=headers)

    async def status(self, booking_id: str, user: dict[str, str]) -> str:
        response = await self.booking.get(f"/bookings/{booking_id}", headers=user)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])


@pytest.fixture(scope="module")
async def purchase(pgbouncer: PgBouncer) -> AsyncIterator[Purchase]:
    movie = movie_app(MovieSettings(**behind(pgbouncer, "movie_service", seed_demo_data=False)))
    booking = booking_app(
        BookingSettings(**behind(pgbouncer, "booking_service", redis_timeout_seconds=10.0)),
        movie_transport=httpx.ASGITransport(app=movie),
    )
    payment = payment_app(
        PaymentSettings(**behind(pgbouncer, "payment_service", reconciler_interval_seconds=3600)),
        booking_transport=httpx.ASGITransport(app=booking),
    )
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(app_client(app)) for app in (movie, booking, payment)]
        yield Purchase(*clients)


async def test_concurrent_purchases_work_behind_pgbouncer(purchase: Purchase) -> None:
    """Bookings (booking's autocommit insert), a race for one seat, two payments per booking
    at once (payment's autocommit key claim and advisory lock), and booking's consumer
    confirming each paid booking: 2 server connections per service carry all of it."""
    showtime = await purchase.showtime()
    buyers = [purchase.user() for _ in range(12)]
    racers = [purchase.user() for _ in range(4)]
    seats = [[f"{row}{n}", f"{row}{n + 1}"] for row in "ABC" for n in (1, 3, 5, 7)]
    answers = await asyncio.gather(
        *(purchase.book(showtime, pair, user) for pair, user in zip(seats, buyers, strict=True)),
        *(purchase.book(showtime, ["F1"], user) for user in racers),
    )
    assert [a.status_code for a in answers[:12]] == [201] * 12, [a.text for a in answers[:12]]
    assert sorted(a.status_code for a in answers[12:]) == [201, 409, 409, 409]
    booked = [
        (a.json()["id"], user)
        for a, user in zip(answers, buyers + racers, strict=True)
        if a.status_code == 201
    ]

    payments = await asyncio.gather(*(purchase.pay(b, user) for b, user in booked for _ in range(2)))
    for (booking_id, _), pair in zip(booked, zip(payments[::2], payments[1::2], strict=True), strict=True):
        assert sorted(p.status_code for p in pair) == [201, 409], [(booking_id, p.text) for p in pair]
        # the second finds it paid, or (once booking confirmed it) no longer pending
        codes = {p.json()["error"]["code"] for p in pair if p.status_code == 409}
        assert codes <= {"booking_already_paid", "booking_not_pending"}, codes

    async def all_confirmed() -> bool:
        statuses = await asyncio.gather(*(purchase.status(b, user) for b, user in booked))
        return set(statuses) == {"confirmed"}

    await wait_until(all_confirmed, within=30, interval=0.2, what="every paid booking confirmed")


# --- a pool that cannot get a server connection -----------------------------------------


@pytest.fixture(scope="module")
def tight(pgbouncers: Callable[..., PgBouncer]) -> PgBouncer:
    """One server connection per service; a client waits for it at most a second."""
    return pgbouncers(1, query_wait_timeout="1")


async def test_a_request_pgbouncer_has_no_server_for_answers_503(tight: PgBouncer) -> None:
    holder = await asyncpg.connect(
        tight.url("booking_service").replace("+asyncpg", ""), statement_cache_size=0
    )
    app: FastAPI = booking_app(
        BookingSettings(**behind(tight, "booking_service", sweeper_interval_seconds=3600))
    )
    token = mint_token(ServiceSettings())
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT 1")  # the pool's only server connection, held
        async with app_client(app) as client:
            busy = await client.get("/bookings", headers={"Authorization": f"Bearer {token}"})
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "1"
            await holder.execute("ROLLBACK")
            again = await client.get("/bookings", headers={"Authorization": f"Bearer {token}"})
            assert again.status_code == 200, again.text
    finally:
        await holder.close()
