"""payment-service alone: SQL statements and CPU per paid booking, in one process.

    TEST_DATABASE_NAME=<db migrated by scripts/db_setup.sh> \
        .venv/bin/python scripts/benchmark/payment_cpu.py [--payments 400] [--concurrency 16] \
        [--events none|known|others]

Runs payment-service's app in-process against the real PostgreSQL, Redis and RabbitMQ
(this run's own key prefix, exchange and queues), with booking-service replaced by a
small app answering ``GET /internal/bookings/{id}`` as docs/contracts.md says. It pays
``--payments`` bookings through ``POST /process`` (card 4242...) with ``--concurrency``
requests in flight and prints, per payment: SQL statements sent through SQLAlchemy, round trips
to PostgreSQL (every asyncpg call that waits for the server: statements on asyncpg or through
SQLAlchemy, BEGIN and COMMIT, prepares; ``round_trips``), calls to the booking app, and the
process's CPU time (the in-process client and the stand-in
booking app included, the same for every version of payment, so differences are payment's).
``--events known`` publishes each booking's ``booking.created`` first (as booking-service's
relay would) and starts measuring once payment-service has consumed them all, so the
payments are of bookings it already knows; ``--events others`` publishes as many
``booking.created`` of other bookings, the same consuming work before the measurement, so
the payments are of bookings it does not know: the like-for-like control of ``known`` (a
process that had just consumed the events measured about 1 ms per payment slower in our runs).
With ``--events``, it also prints the consuming of those ``booking.created`` by themselves: the
process's CPU and the round trips to PostgreSQL (asyncpg messages that wait for an answer:
statements, BEGIN and COMMIT) per event, from the first publish to the last one consumed.
An A/B of payment's code is: check out one version, run, check out the other, run, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payment_service.config import PaymentSettings
from payment_service.main import create_app
from payment_service.models import processed_events
from servicekit.events import new_event
from servicekit.testing import (
    app_client,
    mint_token,
    not_counted,
    round_trips,
    test_settings_overrides,
    wait_until,
)

GOOD_CARD = "4242424242424242"


def booking_desk(bookings: dict[str, dict[str, Any]], calls: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/bookings/{booking_id}")
    async def get_booking(booking_id: str) -> JSONResponse:
        calls.append(booking_id)
        found = bookings.get(booking_id)
        return JSONResponse(found) if found else JSONResponse({"error": {}}, status_code=404)

    return app


def new_booking(user_id: uuid.UUID) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": str(uuid.uuid4()),
        "user_id": str(user_id),
        "user_email": "bench@example.com",
        "status": "pending",
        "showtime_id": str(uuid.uuid4()),
        "seats": ["A1", "A2"],
        "total_amount": 180_000,
        "currency": "VND",
        "expires_at": (now + timedelta(minutes=10)).isoformat(),
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "cancellable_until": (now + timedelta(hours=23)).isoformat(),
    }


# booking.created's payload (docs/contracts.md), besides booking_id
CREATED_FIELDS = ("user_id", "user_email", "showtime_id", "seats", "total_amount", "currency", "expires_at")


async def announce(
    settings: PaymentSettings, sessionmaker: async_sessionmaker[AsyncSession], bookings: list[dict[str, Any]]
) -> None:
    """Publish each booking's ``booking.created``; return once payment-service consumed them all."""
    url, consumer = settings.rabbitmq_url.get_secret_value(), f"{settings.queue_prefix}payment-service.events"
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)

        async def attached() -> bool:  # a message published before the queue is bound is lost
            probe = await connection.channel()  # a passive declare of a missing queue closes it
            try:
                queue = await probe.declare_queue(consumer, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return False
            await probe.close()
            return bool(queue.declaration_result.consumer_count)

        await wait_until(attached, within=30, what="payment-service's consumer")
        with round_trips(everywhere=True) as trips:
            cpu = time.process_time()
            exchange = await channel.get_exchange(settings.events_exchange)
            ids = []
            for booking in bookings:
                data = {"booking_id": booking["id"], **{field: booking[field] for field in CREATED_FIELDS}}
                envelope = new_event("booking.created", "booking-service", data)
                message = aio_pika.Message(envelope.model_dump_json().encode(), delivery_mode=2)
                await exchange.publish(message, routing_key="booking.created")
                ids.append(envelope.event_id)

            async def all_consumed() -> bool:
                with not_counted():
                    async with sessionmaker() as session:
                        stmt = select(func.count()).where(processed_events.c.event_id.in_(ids))
                        return int(await session.scalar(stmt) or 0) == len(ids)

            await wait_until(all_consumed, within=120, interval=0.2, what="every booking.created consumed")
            cpu = time.process_time() - cpu
    sys.stdout.write(
        f"booking.created consumed {len(ids)}  CPU ms/event {cpu / len(ids) * 1000:.2f}  "
        f"PostgreSQL round trips/event {trips[0] / len(ids):.2f}\n"
    )


async def run(payments: int, concurrency: int, events: str) -> None:
    settings = PaymentSettings(
        **test_settings_overrides(
            "payment_service", "payment", booking_service_url="http://booking.bench", events_enabled=True
        )
    )
    user_id = uuid.uuid4()
    token = mint_token(settings, user_id=user_id, email="bench@example.com")
    bookings = {b["id"]: b for b in (new_booking(user_id) for _ in range(payments + concurrency))}
    calls: list[str] = []
    app = create_app(settings, booking_transport=httpx.ASGITransport(app=booking_desk(bookings, calls)))
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    async with app_client(app) as client:
        if events != "none":
            announced = (
                list(bookings.values()) if events == "known" else [new_booking(user_id) for _ in bookings]
            )
            await announce(settings, app.state.runtime.sessionmaker, announced)
        engine = app.state.runtime.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for booking_id in bookings:
            queue.put_nowait(booking_id)
        headers = {"Authorization": f"Bearer {token}"}

        async def pay_one() -> None:
            booking_id = queue.get_nowait()
            body = {"booking_id": booking_id, "payment_method": "credit_card", "card_number": GOOD_CARD}
            response = await client.post("/process", json=body, headers=headers)
            assert response.status_code == 201, response.text

        async def worker(share: int) -> None:
            for _ in range(share):
                await pay_one()

        await asyncio.gather(*(worker(1) for _ in range(concurrency)))  # warm up pools and caches
        statements, calls[:] = 0, []
        share = payments // concurrency
        with round_trips(everywhere=True) as trips:
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker(share) for _ in range(concurrency)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        done = share * concurrency
        event.remove(engine, "before_cursor_execute", count)
    sys.stdout.write(
        f"payments {done}  concurrency {concurrency}  events {events}  "
        f"SQL statements/payment {statements / done:.1f}  round trips/payment {trips[0] / done:.1f}  "
        f"booking calls/payment {len(calls) / done:.2f}  "
        f"CPU ms/payment {cpu / done * 1000:.2f}  payments/s {done / wall:.0f}\n"
    )


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--payments", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--events",
        choices=("none", "known", "others"),
        default="none",
        help="booking.created published first: none, the paid bookings', or as many of other bookings",
    )
    args = parser.parse_args()
    asyncio.run(run(args.payments, args.concurrency, args.events))


if __name__ == "__main__":
    main()
