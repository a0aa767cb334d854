"""The payment saga through the whole running system (gateway, booking, payment, RabbitMQ).

book -> pay -> booking confirmed (payment.completed) -> cancel -> refunded
(booking.cancelled -> payment.refunded) -> booking cancelled, seats free again.
Needs ``scripts/test.sh`` (or ``scripts/run_local.sh up``); ``GATEWAY_URL`` names the gateway.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from servicekit.testing import wait_until

pytestmark = pytest.mark.system

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
PASSWORD = "Pay-Then-Refund-42"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=10) as client:
        yield client


async def register(api: httpx.AsyncClient) -> dict[str, Any]:
    name = f"pay{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    assert (await api.post("/api/auth/register", json=body)).status_code == 201
    token = await api.post("/api/auth/token", data={"username": name, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"headers": {"Authorization": f"Bearer {token.json()['access_token']}"}}


async def book_two_seats(api: httpx.AsyncClient, user: dict[str, Any]) -> dict[str, Any]:
    """A pending booking of two available seats of some upcoming showtime (retries on a race)."""
    listed = (await api.get("/api/movies/showtimes", params={"limit": 100})).json()["items"]
    later = datetime.now(UTC) + timedelta(hours=2)  # cancellable: well before the cut-off
    showtimes = [s for s in listed if datetime.fromisoformat(s["starts_at"]) > later]
    for _ in range(10):
        showtime = random.choice(showtimes)
        seat_map = (await api.get(f"/api/movies/showtimes/{showtime['id']}/seats")).json()
        free = [seat["seat_id"] for seat in seat_map["seats"] if seat["status"] == "available"]
        if len(free) < 2:
            continue
        body = {"showtime_id": showtime["id"], "seat_ids": random.sample(free, 2)}
        response = await api.post("/api/bookings/book", json=body, headers=user["headers"])
        if response.status_code == 201:
            return dict(response.json())
    raise AssertionError("could not book two seats")


async def pay(
    api: httpx.AsyncClient, user: dict[str, Any], booking_id: str, key: str, **body: Any
) -> httpx.Response:
    headers = {**user["headers"], "Idempotency-Key": key}
    payload = {"booking_id": booking_id, "payment_method": "credit_card", **body}
    return await api.post("/api/payments/process", json=payload, headers=headers)


async def wait_for_status(
    api: httpx.AsyncClient, user: dict[str, Any], path: str, status: str
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        response = await api.get(path, headers=user["headers"])
        return (
            response.json() if response.status_code == 200 and response.json()["status"] == status else None
        )

    return await wait_until(reached, within=30, interval=0.2, what=f"{path} {status}")


async def seat_statuses(api: httpx.AsyncClient, booking: dict[str, Any]) -> set[str]:
    seat_map = (await api.get(f"/api/movies/showtimes/{booking['showtime_id']}/seats")).json()
    return {seat["status"] for seat in seat_map["seats"] if seat["seat_id"] in booking["seats"]}


async def test_book_pay_confirm_cancel_refund_and_the_seats_are_free_again(api: httpx.AsyncClient) -> None:
    user = await register(api)
    booking = await book_two_seats(api, user)
    key = f"sys-{uuid.uuid4().hex}"
    paid = await pay(api, user, booking["id"], key, card_number="4242424242424242")
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    assert payment["status"] == "succeeded" and payment["amount"] == booking["total_amount"]
    replay = await pay(api, user, booking["id"], key, card_number="4242424242424242")
    assert replay.json() == payment and replay.headers["Idempotent-Replayed"] == "true"
    confirmed = await wait_for_status(api, user, f"/api/bookings/bookings/{booking['id']}", "confirmed")
    assert confirmed["status"] == "confirmed"
    again = await pay(api, user, booking["id"], f"sys-{uuid.uuid4().hex}")
    assert again.status_code == 409  # a paid booking is never charged twice

    cancel = await api.post(f"/api/bookings/bookings/{booking['id']}/cancel", headers=user["headers"])
    assert cancel.status_code == 200, cancel.text
    refunded = await wait_for_status(api, user, f"/api/payments/payments/{payment['id']}", "refunded")
    assert refunded["refund_reason"] == "user_cancelled"
    await wait_for_status(api, user, f"/api/bookings/bookings/{booking['id']}", "cancelled")

    async def seats_free() -> bool:
        return await seat_statuses(api, booking) == {"available"}

    await wait_until(seats_free, within=15, what="the seats available again")


async def test_another_users_payment_is_invisible(api: httpx.AsyncClient) -> None:
    owner, stranger = await register(api), await register(api)
    booking = await book_two_seats(api, owner)
    paid = await pay(api, owner, booking["id"], f"sys-{uuid.uuid4().hex}")
    assert paid.status_code == 201, paid.text
    path = f"/api/payments/payments/{paid.json()['id']}"
    assert (await api.get(path, headers=stranger["headers"])).status_code == 404
    assert (await api.post(f"{path}/refund", headers=stranger["headers"])).status_code == 404
    stolen = await pay(api, stranger, booking["id"], f"sys-{uuid.uuid4().hex}")
    assert stolen.status_code == 404
