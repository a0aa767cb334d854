"""Tickets at the door through the gateway: book -> pay -> tickets -> check-in by staff ->
second scan refused -> cancel and refund refused; a cancelled booking's tickets are void.

The admin schedules a showtime 45 minutes away in a small new hall, so its doors are open
(60 minutes before the start) while its bookings can still be cancelled (until 30 before).
Needs a running system (``scripts/test.sh`` or ``scripts/run_local.sh up``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from servicekit.testing import wait_until

pytestmark = pytest.mark.system
GOOD_CARD = "4242424242424242"
PASSWORD = "At-The-Door-Pass-42"
Person = Any  # conftest's Person: username, token, user_id, headers (test modules cannot import conftest)


async def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


async def door_showtime(api: httpx.AsyncClient, admin: Person) -> dict[str, Any]:
    """A showtime 45 minutes away in a new 8-seat hall of the first theater (admin API)."""
    theater = (await api.get("/api/movies/theaters", params={"limit": 1})).json()["items"][0]
    movie = (await api.get("/api/movies/movies", params={"limit": 1})).json()["items"][0]
    hall = {
        "theater_id": theater["id"],
        "name": f"Door {uuid.uuid4().hex[:8]}",
        "layout": {"rows": [{"seats": 8}]},
    }
    auditorium = await _created(await api.post("/api/movies/auditoriums", json=hall, headers=admin.headers))
    body = {
        "movie_id": movie["id"],
        "auditorium_id": auditorium["id"],
        "starts_at": (datetime.now(UTC) + timedelta(minutes=45)).isoformat(),
        "currency": "VND",
        "prices": {"standard": 90000},
    }
    return await _created(await api.post("/api/movies/showtimes", json=body, headers=admin.headers))


async def register(api: httpx.AsyncClient) -> dict[str, Any]:
    """A new user: ``id``, ``username``, ``headers`` (a token from a fresh login)."""
    name = f"door{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    created = await _created(await api.post("/api/auth/register", json=body))
    return {"id": created["id"], "username": name, "headers": await login(api, name)}


async def login(api: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await api.post("/api/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def staff_member(api: httpx.AsyncClient, admin: Person) -> tuple[dict[str, str], dict[str, str]]:
    """A user the admin made staff: headers with the token issued after the grant (which carries
    the role), and with the token from before it (which does not)."""
    person = await register(api)
    url = f"/api/auth/users/{person['id']}/roles"
    granted = await api.post(url, json={"role": "staff"}, headers=admin.headers)
    assert granted.status_code == 200 and "staff" in granted.json()["roles"], granted.text
    return await login(api, person["username"]), person["headers"]


async def paid_booking(
    api: httpx.AsyncClient, owner: dict[str, Any], showtime: dict[str, Any], seats: list[str]
) -> dict[str, Any]:
    """Book ``seats``, pay with the good card, wait for the confirmation."""
    body = {"showtime_id": showtime["id"], "seat_ids": seats}
    booking = await _created(await api.post("/api/bookings/book", json=body, headers=owner["headers"]))
    payment = {"booking_id": booking["id"], "payment_method": "credit_card", "card_number": GOOD_CARD}
    headers = {**owner["headers"], "Idempotency-Key": f"door-{uuid.uuid4().hex}"}
    paid = await _created(await api.post("/api/payments/process", json=payment, headers=headers))
    await _wait_for(api, owner, f"/api/bookings/bookings/{booking['id']}", "confirmed")
    return {**booking, "payment_id": paid["id"]}


async def _wait_for(api: httpx.AsyncClient, person: dict[str, Any], path: str, status: str) -> None:
    async def reached() -> bool:
        response = await api.get(path, headers=person["headers"])
        return response.status_code == 200 and response.json()["status"] == status

    await wait_until(reached, within=30, interval=0.2, what=f"{path} {status}")


async def tickets_of(
    api: httpx.AsyncClient, owner: dict[str, Any], booking: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await api.get(f"/api/bookings/bookings/{booking['id']}/tickets", headers=owner["headers"])
    assert response.status_code == 200, response.text
    return list(response.json())


def _refusal(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return dict(error)


async def test_tickets_admit_once_at_the_door_and_an_admitted_booking_cannot_be_cancelled(
    gateway: httpx.AsyncClient, people: Any
) -> None:
    admin = await people.admin()
    showtime = await door_showtime(gateway, admin)
    staff, not_yet_staff = await staff_member(gateway, admin)
    owner = await register(gateway)
    booking = await paid_booking(gateway, owner, showtime, ["A1", "A2"])

    tickets = await tickets_of(gateway, owner, booking)
    assert [(t["seat"], t["status"]) for t in tickets] == [("A1", "valid"), ("A2", "valid")]
    qr = await gateway.get(tickets[0]["qr_url"], headers=owner["headers"])
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml", qr.text
    assert qr.content.startswith(b"<svg")
    assert (await gateway.get(tickets[0]["qr_url"], headers=staff)).status_code == 200
    stranger = await register(gateway)
    assert (await gateway.get(tickets[0]["qr_url"], headers=stranger["headers"])).status_code == 404

    scan = {"code": tickets[0]["code"], "theater_id": showtime["theater_id"]}
    assert (await gateway.post("/api/bookings/checkin", json=scan, headers=not_yet_staff)).status_code == 403
    assert (
        await gateway.post("/api/bookings/checkin", json=scan, headers=owner["headers"])
    ).status_code == 403
    elsewhere = {**scan, "theater_id": str(uuid.uuid4())}
    _refusal(await gateway.post("/api/bookings/checkin", json=elsewhere, headers=staff), "wrong_theater")
    admitted = await gateway.post("/api/bookings/checkin", json=scan, headers=staff)
    assert admitted.status_code == 200, admitted.text
    assert (admitted.json()["admitted"], admitted.json()["seat"]) == (True, "A1")
    second = _refusal(
        await gateway.post("/api/bookings/checkin", json=scan, headers=staff), "already_admitted"
    )
    assert datetime.fromisoformat(second["details"]["admitted_at"]) == datetime.fromisoformat(
        admitted.json()["admitted_at"]
    )
    unknown = await gateway.post("/api/bookings/checkin", json={"code": "no-such-ticket"}, headers=staff)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "ticket_not_found"

    cancel = await gateway.post(f"/api/bookings/bookings/{booking['id']}/cancel", headers=owner["headers"])
    _refusal(cancel, "tickets_admitted")
    refund = await gateway.post(
        f"/api/payments/payments/{booking['payment_id']}/refund", headers=owner["headers"]
    )
    _refusal(refund, "tickets_admitted")
    after = await tickets_of(gateway, owner, booking)
    assert [(t["seat"], t["status"]) for t in after] == [("A1", "admitted"), ("A2", "valid")]


async def test_a_cancelled_bookings_tickets_are_void_at_the_door(
    gateway: httpx.AsyncClient, people: Any
) -> None:
    admin = await people.admin()
    showtime = await door_showtime(gateway, admin)
    owner = await register(gateway)
    booking = await paid_booking(gateway, owner, showtime, ["A5"])
    [ticket] = await tickets_of(gateway, owner, booking)
    cancel = await gateway.post(f"/api/bookings/bookings/{booking['id']}/cancel", headers=owner["headers"])
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled", cancel.text
    assert [t["status"] for t in await tickets_of(gateway, owner, booking)] == ["void"]
    _refusal(
        await gateway.post("/api/bookings/checkin", json={"code": ticket["code"]}, headers=admin.headers),
        "ticket_void",
    )
    await _wait_for(gateway, owner, f"/api/payments/payments/{booking['payment_id']}", "refunded")
