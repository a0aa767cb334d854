"""Own bookings only, pagination, the internal endpoints, metrics, and a Redis outage."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx

from booking_service.config import BookingSettings
from booking_service.main import create_app
from servicekit.testing import TcpProxy, app_client, wait_until

Builder = Callable[..., Awaitable[Any]]
Headers = Callable[..., dict[str, str]]


async def test_another_users_booking_is_404(
    client: httpx.AsyncClient, make_showtime: Builder, book: Builder, user_headers: Headers
) -> None:
    owner, stranger = user_headers(), user_headers()
    booking = (await book(await make_showtime(), ["A1"], owner)).json()
    for method, path in (
        ("GET", f"/bookings/{booking['id']}"),
        ("POST", f"/bookings/{booking['id']}/cancel"),
    ):
        response = await client.request(method, path, headers=stranger)
        assert response.status_code == 404 and response.json()["error"]["code"] == "booking_not_found"
    assert (await client.get(f"/bookings/{booking['id']}", headers=owner)).json()["status"] == "pending"
    assert (await client.get("/bookings", headers=stranger)).json()["total"] == 0
    assert (await client.get("/bookings/not-a-uuid", headers=owner)).status_code == 422
    assert (await client.get(f"/bookings/{uuid.uuid4()}", headers=owner)).status_code == 404


async def test_my_bookings_are_paginated_and_filtered_by_status(
    client: httpx.AsyncClient, make_showtime: Builder, book: Builder, user_headers: Headers
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    ids = [(await book(showtime, [f"B{n}"], headers)).json()["id"] for n in range(1, 4)]
    await client.post(f"/bookings/{ids[0]}/cancel", headers=headers)
    page = (await client.get("/bookings", params={"limit": 2}, headers=headers)).json()
    assert page["total"] == 3 and [b["id"] for b in page["items"]] == ids[:0:-1]
    rest = (await client.get("/bookings", params={"limit": 2, "offset": 2}, headers=headers)).json()
    assert [b["id"] for b in rest["items"]] == [ids[0]]
    cancelled = (await client.get("/bookings", params={"status": "cancelled"}, headers=headers)).json()
    assert cancelled["total"] == 1 and cancelled["items"][0]["id"] == ids[0]
    for bad in ({"status": "lost"}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        response = await client.get("/bookings", params=bad, headers=headers)
        assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


async def test_internal_endpoints_need_the_internal_token(client: httpx.AsyncClient) -> None:
    for path in (f"/internal/bookings/{uuid.uuid4()}", f"/internal/showtimes/{uuid.uuid4()}/seat-status"):
        assert (await client.get(path)).status_code == 404
        assert (await client.get(path, headers={"X-Internal-Token": "guess"})).status_code == 404


async def test_internal_booking_gives_payment_the_amount_owner_and_status(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    internal_headers: dict[str, str],
) -> None:
    user_id = uuid.uuid4()
    booking = (await book(await make_showtime(), ["C1", "F1"], user_headers(user_id))).json()
    response = await client.get(f"/internal/bookings/{booking['id']}", headers=internal_headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "user_id",
        "user_email",
        "status",
        "showtime_id",
        "seats",
        "total_amount",
        "currency",
        "expires_at",
        "starts_at",
        "cancellable_until",
        "admitted",
    }
    assert body["user_id"] == str(user_id) and body["user_email"] == f"u{user_id.hex[:8]}@example.com"
    assert (body["status"], body["total_amount"], body["currency"]) == ("pending", 3200, "VND")
    assert body["admitted"] is False
    missing = await client.get(f"/internal/bookings/{uuid.uuid4()}", headers=internal_headers)
    assert missing.status_code == 404


async def test_seat_status_lists_held_and_booked_seats(
    client: httpx.AsyncClient,
    make_showtime: Builder,
    book: Builder,
    user_headers: Headers,
    internal_headers: dict[str, str],
    publish_payment: Builder,
) -> None:
    showtime, headers = await make_showtime(), user_headers()
    held = (await book(showtime, ["D10", "D2"], headers)).json()
    paid = (await book(showtime, ["E5"], headers)).json()
    cancelled = (await book(showtime, ["E6"], headers)).json()
    await client.post(f"/bookings/{cancelled['id']}/cancel", headers=headers)
    await publish_payment("payment.completed", paid)
    path = f"/internal/showtimes/{showtime['showtime_id']}/seat-status"

    async def paid_seat_booked() -> dict[str, Any] | None:
        body = dict((await client.get(path, headers=internal_headers)).json())
        return body if body["booked"] == ["E5"] else None

    status = await wait_until(paid_seat_booked, what="the paid seat booked")
    assert status == {"showtime_id": showtime["showtime_id"], "held": ["D2", "D10"], "booked": ["E5"]}
    assert held["seats"] == ["D10", "D2"]


async def test_metrics_count_holds_and_bookings(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    assert 'seat_holds_total{outcome="taken"}' in text
    assert 'bookings_total{status="pending"}' in text


async def test_redis_outage_is_a_fast_503_and_booking_recovers(
    booking_client: Callable[[BookingSettings], AbstractAsyncContextManager[httpx.AsyncClient]],
    settings_with: Callable[..., BookingSettings],
    make_showtime: Builder,
    book: Builder,
) -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    proxied = settings_with(
        redis_url=f"redis://127.0.0.1:{proxy.port}/0", events_enabled=False, redis_timeout_seconds=1.0
    )
    showtime = await make_showtime()
    async with booking_client(proxied) as flaky:
        assert (await book(showtime, ["A1"], via=flaky)).status_code == 201
        await proxy.cut()
        started = time.monotonic()
        response = await book(showtime, ["A2"], via=flaky)
        assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
        assert time.monotonic() - started < 1.0
        await proxy.restore()
        assert (await book(showtime, ["A2"], via=flaky)).status_code == 201
    await proxy.cut()


async def test_movie_service_down_is_a_503_not_a_hang(
    settings_with: Callable[..., BookingSettings], user_headers: Headers
) -> None:
    unreachable = settings_with(movie_service_url="http://127.0.0.1:9", events_enabled=False)
    async with app_client(create_app(unreachable)) as lonely:
        body = {"showtime_id": str(uuid.uuid4()), "seat_ids": ["A1"]}
        started = time.monotonic()
        response = await lonely.post("/book", json=body, headers=user_headers())
        assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
        assert "movie" in response.json()["error"]["message"]
        assert time.monotonic() - started < 2.0
