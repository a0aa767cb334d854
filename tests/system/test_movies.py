"""movie-service through the whole running system (NGINX gateway, auth, booking).

Needs ``scripts/test.sh`` (or ``scripts/run_local.sh up``) and ``GATEWAY_URL``; the admin
account is auth-service's bootstrap admin (``ADMIN_USERNAME`` / ``ADMIN_PASSWORD``).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from servicekit.testing import wait_until

pytestmark = pytest.mark.system

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080")
ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "AdminDevPass123!")
PASSWORD = "Movie-Goer-Pass-42"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=10) as client:
        yield client


async def bearer(api: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await api.post("/api/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def new_user(api: httpx.AsyncClient) -> dict[str, str]:
    name = f"mv{uuid.uuid4().hex[:10]}"
    body = {"email": f"{name}@example.com", "username": name, "password": PASSWORD}
    assert (await api.post("/api/auth/register", json=body)).status_code == 201
    return await bearer(api, name, PASSWORD)


async def upcoming_showtime(api: httpx.AsyncClient) -> dict[str, Any]:
    listed = (await api.get("/api/movies/showtimes", params={"city": "Hanoi", "limit": 100})).json()
    later = [
        s
        for s in listed["items"]
        if datetime.fromisoformat(s["starts_at"]) > datetime.now(UTC) + timedelta(hours=1)
    ]
    assert later, "the demo seed has upcoming showtimes in Hanoi"
    return later[-1]


async def test_the_demo_catalog_is_browsable_through_the_gateway(api: httpx.AsyncClient) -> None:
    movies = (await api.get("/api/movies/movies", params={"limit": 5})).json()
    assert movies["total"] >= 12 and len(movies["items"]) == 5
    # By city: on a long-lived instance other theaters (the benchmark's) can fill page 1.
    for city, at_least in (("Hanoi", 2), ("Ho Chi Minh City", 1)):
        theaters = (await api.get("/api/movies/theaters", params={"city": city})).json()
        assert theaters["total"] >= at_least and {t["city"] for t in theaters["items"]} == {city}
    showtime = await upcoming_showtime(api)
    detail = (await api.get(f"/api/movies/movies/{showtime['movie_id']}")).json()
    assert detail["showtimes"] and detail["id"] == showtime["movie_id"]
    assert (await api.get("/api/movies/movies/not-a-uuid")).status_code == 422


async def test_the_internal_look_up_is_not_routed(api: httpx.AsyncClient) -> None:
    showtime = await upcoming_showtime(api)
    response = await api.get(f"/api/movies/internal/showtimes/{showtime['id']}")
    assert response.status_code == 404


async def test_held_seats_show_on_the_seat_map(api: httpx.AsyncClient) -> None:
    showtime = await upcoming_showtime(api)
    url = f"/api/movies/showtimes/{showtime['id']}/seats"
    free = [s["seat_id"] for s in (await api.get(url)).json()["seats"] if s["status"] == "available"]
    wanted = free[-2:]
    booked = await api.post(
        "/api/bookings/book",
        json={"showtime_id": showtime["id"], "seat_ids": wanted},
        headers=await new_user(api),
    )
    assert booked.status_code == 201, booked.text

    async def shown_taken() -> bool:
        seats = {s["seat_id"]: s["status"] for s in (await api.get(url)).json()["seats"]}
        return all(seats[s] in ("held", "booked") for s in wanted)

    await wait_until(shown_taken, within=3, what="held seats on the seat map")


async def test_admin_writes_through_the_gateway(api: httpx.AsyncClient) -> None:
    body = {"title": f"System Test {uuid.uuid4().hex[:8]}", "duration_minutes": 95, "genres": ["drama"]}
    assert (await api.post("/api/movies/movies", json=body)).status_code == 401
    assert (await api.post("/api/movies/movies", json=body, headers=await new_user(api))).status_code == 403
    admin = await bearer(api, ADMIN_USERNAME, ADMIN_PASSWORD)
    created = await api.post("/api/movies/movies", json=body, headers=admin)
    assert created.status_code == 201, created.text
    movie_url = f"/api/movies/movies/{created.json()['id']}"
    assert (await api.get(movie_url)).json()["title"] == body["title"]
    renamed = await api.patch(movie_url, json={"title": body["title"] + " II"}, headers=admin)
    assert renamed.status_code == 200
    assert (await api.get(movie_url)).json()["title"] == body["title"] + " II"
    assert (await api.delete(movie_url, headers=admin)).status_code == 204


async def test_the_gateway_serves_seat_maps_from_its_micro_cache(api: httpx.AsyncClient) -> None:
    """Repeated reads of one map within a second are answered by NGINX (X-Cache-Status HIT);
    other routes are never cached, and a held seat still shows within the 1 s lag (above)."""
    showtime = await upcoming_showtime(api)
    url = f"/api/movies/showtimes/{showtime['id']}/seats"

    async def served_from_cache() -> bool:
        answers = [await api.get(url) for _ in range(5)]
        assert all(a.status_code == 200 and a.headers["x-request-id"] for a in answers)
        return any(a.headers.get("x-cache-status") == "HIT" for a in answers)

    await wait_until(served_from_cache, within=5, what="a seat map answered from the gateway's cache")
    catalog = await api.get("/api/movies/movies")
    assert catalog.status_code == 200 and "x-cache-status" not in catalog.headers


async def test_a_burst_of_readers_fetches_each_seconds_seat_map_once(api: httpx.AsyncClient) -> None:
    """Readers that find a second's map not cached yet wait for the one request that fetches it
    (proxy_cache_lock): 32 at once cost movie one request per second they span, not 32 (before,
    all of them went on to movie at every expiry and every reader stalled behind them)."""
    showtime = await upcoming_showtime(api)
    url = f"/api/movies/showtimes/{showtime['id']}/seats"
    browser = {"Accept-Encoding": "gzip, deflate, br"}
    assert (await api.get(url, headers={"Accept-Encoding": "identity"})).status_code == 200  # movie warm
    bursts: list[Counter[str | None]] = []
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=10) as readers:
        assert (await readers.get("/health")).status_code == 200
        # Up to three bursts: on a busy machine movie may take longer than the lock's 50 ms
        # once. The old config sent 8-32 of every burst to movie (MISS or EXPIRED).
        while len(bursts) < 3 and not (bursts and _to_movie(bursts[-1]) <= 2):
            await asyncio.sleep(1.02 - time.time() % 1)  # the burst begins a new second
            answers = await asyncio.gather(*(readers.get(url, headers=browser) for _ in range(32)))
            assert {a.status_code for a in answers} == {200}
            bursts.append(Counter(a.headers.get("x-cache-status") for a in answers))
    assert _to_movie(bursts[-1]) <= 2, bursts


def _to_movie(cache_statuses: Counter[str | None]) -> int:
    """How many answers of a burst movie gave (every one the gateway did not answer itself)."""
    return sum(n for status, n in cache_statuses.items() if status != "HIT")


async def test_the_gateway_keeps_a_gzip_and_a_plain_copy_of_each_seat_map(api: httpx.AsyncClient) -> None:
    """A browser (Accept-Encoding: gzip) gets the compressed map and a client that does not ask
    for it the plain one, each from its own cache entry: never the other's bytes."""
    showtime = await upcoming_showtime(api)
    url = f"/api/movies/showtimes/{showtime['id']}/seats"

    async def both_served_from_cache() -> bool:
        packed = await api.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
        plain = await api.get(url, headers={"Accept-Encoding": "identity"})
        assert packed.headers.get("content-encoding") == "gzip"
        assert "content-encoding" not in plain.headers
        assert packed.json()["seats"] and plain.json()["showtime_id"] == packed.json()["showtime_id"]
        return packed.headers.get("x-cache-status") == "HIT" and plain.headers.get("x-cache-status") == "HIT"

    await wait_until(both_served_from_cache, within=5, what="both encodings from the gateway cache")
