"""Notifications through the whole running system (gateway, every service, the mail catcher).

Needs ``scripts/test.sh`` (or ``scripts/run_local.sh up``): ``GATEWAY_URL`` and ``MAIL_DIR``
(the folder ``scripts/mailcatcher.py`` writes, with its ``index.jsonl``).
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from servicekit.testing import wait_until

pytestmark = pytest.mark.system

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
MAIL_DIR = Path(os.environ.get("MAIL_DIR", "var/local/mail"))
PASSWORD = "Notify-Me-Twice-42"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=10) as client:
        yield client


def mails_to(address: str) -> list[dict[str, Any]]:
    """Index entries of mails the catcher received for ``address``, with their parsed message."""
    index = MAIL_DIR / "index.jsonl"
    if not index.exists():
        return []
    entries = [json.loads(line) for line in index.read_text().splitlines() if line.strip()]
    found = [entry for entry in entries if address in entry["rcpt_to"]]
    for entry in found:
        entry["message"] = message_from_bytes((MAIL_DIR / entry["file"]).read_bytes(), policy=policy.default)
    return found


async def wait_for_mails(address: str, count: int) -> list[dict[str, Any]]:
    async def arrived() -> list[dict[str, Any]] | None:
        found = mails_to(address)
        return found if len(found) >= count else None

    return await wait_until(arrived, within=45, interval=0.25, what=f"{count} mail(s) to {address}")


async def register(api: httpx.AsyncClient) -> dict[str, Any]:
    name = f"nt{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    assert (await api.post("/api/auth/register", json=body)).status_code == 201
    token = await api.post("/api/auth/token", data={"username": name, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"email": body["email"], "headers": {"Authorization": f"Bearer {token.json()['access_token']}"}}


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
            return {**response.json(), "showtime": showtime}
    raise AssertionError("could not book two seats")


async def test_registration_sends_one_welcome_mail_listed_only_for_its_user(api: httpx.AsyncClient) -> None:
    ann, bob = await register(api), await register(api)
    [welcome] = await wait_for_mails(ann["email"], 1)
    assert "Welcome to Movie Booking" in welcome["subject"]

    async def listed() -> list[dict[str, Any]] | None:
        page = await api.get("/api/notifications/notifications", headers=ann["headers"])
        items = page.json()["items"] if page.status_code == 200 else []
        return items if items and items[0]["status"] == "sent" else None

    [row] = await wait_until(listed, within=15, what="welcome listed as sent")
    assert row["template"] == "welcome" and row["recipient"] == ann["email"]
    other = await api.get(f"/api/notifications/notifications/{row['id']}", headers=bob["headers"])
    assert other.status_code == 404


async def test_a_paid_booking_gives_exactly_one_tickets_mail(api: httpx.AsyncClient) -> None:
    user = await register(api)
    booking = await book_two_seats(api, user)
    paid = await api.post(
        "/api/payments/process",
        json={"booking_id": booking["id"], "payment_method": "credit_card"},
        headers=user["headers"],
    )
    assert paid.status_code in (200, 201), paid.text
    mails = await wait_for_mails(user["email"], 2)  # welcome + tickets
    [tickets] = [mail for mail in mails if "Your tickets" in mail["subject"]]
    text = tickets["message"].get_body(("plain",)).get_content()
    reference = booking["id"].replace("-", "")[:8].upper()
    assert reference in text and booking["showtime"]["movie_title"] in text
    assert all(seat in text for seat in booking["seats"])

    async def both_sent() -> bool:
        page = (await api.get("/api/notifications/notifications", headers=user["headers"])).json()
        return page["total"] == 2 and all(item["status"] == "sent" for item in page["items"])

    await wait_until(both_sent, within=15, what="welcome and tickets recorded as sent")
    assert len(mails_to(user["email"])) == 2
