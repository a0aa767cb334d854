"""payment-service alone: SQL statements and CPU per paid booking, in one process.

    TEST_DATABASE_NAME=<db migrated by scripts/db_setup.sh> \
        .venv/bin/python scripts/benchmark/payment_cpu.py [--payments 400] [--concurrency 16]

Runs payment-service's app in-process against the real PostgreSQL, Redis and RabbitMQ
(this run's own key prefix, exchange and queues), with booking-service replaced by a
small app answering ``GET /internal/bookings/{id}`` as docs/contracts.md says. It pays
``--payments`` bookings through ``POST /process`` (card 4242...) with ``--concurrency``
requests in flight and prints, per payment: SQL statements sent by payment-service, and
the process's CPU time (the in-process client and the stand-in booking app included, the
same for every version of payment, so differences are payment's). An A/B of payment's
code is: check out one version, run, check out the other, run, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import event

from payment_service.config import PaymentSettings
from payment_service.main import create_app
from servicekit.testing import app_client, mint_token, test_settings_overrides

GOOD_CARD = "4242424242424242"


def booking_desk(bookings: dict[str, dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.get("/internal/bookings/{booking_id}")
    async def get_booking(booking_id: str) -> JSONResponse:
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


async def run(payments: int, concurrency: int) -> None:
    settings = PaymentSettings(
        **test_settings_overrides(
            "payment_service", "payment", booking_service_url="http://booking.bench", events_enabled=True
        )
    )
    user_id = uuid.uuid4()
    token = mint_token(settings, user_id=user_id, email="bench@example.com")
    bookings = {b["id"]: b for b in (new_booking(user_id) for _ in range(payments + concurrency))}
    app = create_app(settings, booking_transport=httpx.ASGITransport(app=booking_desk(bookings)))
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    async with app_client(app) as client:
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
        statements = 0
        cpu, wall = time.process_time(), time.perf_counter()
        share = payments // concurrency
        await asyncio.gather(*(worker(share) for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        done = share * concurrency
        event.remove(engine, "before_cursor_execute", count)
    sys.stdout.write(
        f"payments {done}  concurrency {concurrency}  SQL statements/payment {statements / done:.1f}  "
        f"CPU ms/payment {cpu / done * 1000:.2f}  payments/s {done / wall:.0f}\n"
    )


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--payments", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(run(args.payments, args.concurrency))


if __name__ == "__main__":
    main()
