"""Invariant 1 through the whole running system: two booking-service replicas behind NGINX,
200 users racing for the same two seats, exactly one winner.

Needs ``scripts/test.sh`` (or ``scripts/run_local.sh up`` with BOOKING_REPLICAS=2);
``GATEWAY_URL`` names the gateway. Every service verifies tokens locally, so the 200
users are 200 token subjects signed with the system's key (auth itself is tested elsewhere).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from servicekit.config import ServiceSettings
from servicekit.testing import mint_token, wait_until

pytestmark = pytest.mark.system

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
RACERS = 200


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=30, limits=limits) as client:
        yield client


def user_headers(settings: ServiceSettings) -> dict[str, str]:
    user_id = uuid.uuid4()
    token = mint_token(settings, user_id=user_id, email=f"racer{user_id.hex[:10]}@example.com")
    return {"Authorization": f"Bearer {token}"}


async def two_free_seats(api: httpx.AsyncClient) -> tuple[str, list[str]]:
    """An upcoming showtime and two seats the seat map shows as available."""
    showtimes = (await api.get("/api/movies/showtimes", params={"limit": 50})).json()["items"]
    random.shuffle(showtimes)
    for showtime in showtimes:
        seat_map = (await api.get(f"/api/movies/showtimes/{showtime['id']}/seats")).json()
        free = [seat["seat_id"] for seat in seat_map["seats"] if seat["status"] == "available"]
        if len(free) >= 2:
            return showtime["id"], random.sample(free, 2)
    raise AssertionError("no showtime with two free seats")


async def seat_statuses(api: httpx.AsyncClient, showtime_id: str, seats: list[str]) -> set[str]:
    seat_map = (await api.get(f"/api/movies/showtimes/{showtime_id}/seats")).json()
    return {seat["status"] for seat in seat_map["seats"] if seat["seat_id"] in seats}


async def test_200_users_race_for_two_seats_through_two_replicas_and_one_wins(api: httpx.AsyncClient) -> None:
    settings = ServiceSettings()
    showtime_id, seats = await two_free_seats(api)
    body: dict[str, Any] = {"showtime_id": showtime_id, "seat_ids": seats}
    racers = [user_headers(settings) for _ in range(RACERS)]
    responses = await asyncio.gather(*(api.post("/api/bookings/book", json=body, headers=h) for h in racers))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: RACERS - 1}, statuses
    assert all(set(r.json()["error"]["details"]) <= set(seats) for r in responses if r.status_code == 409)
    winner_index = next(i for i, r in enumerate(responses) if r.status_code == 201)
    winner = responses[winner_index].json()
    mine = (await api.get("/api/bookings/bookings", headers=racers[winner_index])).json()
    assert mine["total"] == 1 and mine["items"][0]["id"] == winner["id"]

    async def shown_held() -> bool:  # the seat map may lag booking by up to 1 s (contracts.md)
        return await seat_statuses(api, showtime_id, seats) == {"held"}

    await wait_until(shown_held, within=3, what="the won seats held on the seat map")
    cancel = await api.post(f"/api/bookings/bookings/{winner['id']}/cancel", headers=racers[winner_index])
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
