from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select

from movie_service.config import MovieSettings
from movie_service.layout import tiers_of
from movie_service.main import create_app
from movie_service.models import Auditorium, Theater
from movie_service.seat_map import ShowtimeFacts, build_layout
from movie_service.seat_status import SeatStatusReader
from movie_service.seed import seed_demo_data
from servicekit.db import create_engine, create_sessionmaker
from servicekit.http import ServiceClient
from servicekit.testing import app_client, mint_token, test_settings_overrides, wait_until

Builder = Callable[..., Awaitable[dict[str, Any]]]
SeatStatusTable = dict[str, dict[str, list[str]]]


async def test_seat_map_shows_every_seat_with_tier_price_and_status(
    client: httpx.AsyncClient, showtime: Builder, seat_statuses: SeatStatusTable
) -> None:
    shown = await showtime()
    seat_statuses[shown["id"]] = {"held": ["A2", "K1"], "booked": ["B4", "Z9"]}
    seat_map = (await client.get(f"/showtimes/{shown['id']}/seats")).json()
    seats = {s["seat_id"]: s for s in seat_map["seats"]}
    assert list(seats) == ["A1", "A2", "A3", "A4", "B1", "B2", "B3", "B4", "K1", "K2"]
    assert seats["A1"] == {"seat_id": "A1", "row": "A", "number": 1, "tier": "standard", "price": 90000,
                           "status": "available"}  # fmt: skip
    assert (seats["B1"]["tier"], seats["B1"]["price"]) == ("vip", 130000)
    assert (seats["K2"]["tier"], seats["K2"]["price"]) == ("couple", 220000)
    assert [seats[s]["status"] for s in ("A2", "K1", "B4")] == ["held", "held", "booked"]
    assert (seat_map["available"], seat_map["held"], seat_map["booked"]) == (7, 2, 1)
    assert seat_map["currency"] == "VND" and seat_map["layout"]["rows"][0]["aisles_after"] == [2]


async def test_seat_statuses_are_reused_for_at_most_a_second(
    client: httpx.AsyncClient, showtime: Builder, seat_statuses: SeatStatusTable
) -> None:
    shown = await showtime()
    url = f"/showtimes/{shown['id']}/seats"
    misses = _seat_map_requests("miss")
    await client.get(url)
    seat_statuses[shown["id"]] = {"held": [], "booked": ["A1"]}
    assert _seat_map_requests("miss") == misses + 1

    async def booked_shows() -> bool:
        seats = (await client.get(url)).json()["seats"]
        return seats[0]["status"] == "booked"

    await wait_until(booked_shows, within=1.5, what="the booked seat to show (<= 1 s)")
    assert _seat_map_requests("hit") > 0


def _seat_map_requests(cache: str) -> float:
    return REGISTRY.get_sample_value("seat_map_requests_total", {"cache": cache}) or 0.0


async def test_concurrent_readers_share_one_booking_call(
    client: httpx.AsyncClient, showtime: Builder
) -> None:
    shown = await showtime()
    misses = _seat_map_requests("miss")
    answers = await asyncio.gather(*(client.get(f"/showtimes/{shown['id']}/seats") for _ in range(20)))
    assert {r.status_code for r in answers} == {200}
    assert _seat_map_requests("miss") == misses + 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def booking_down_client() -> AsyncIterator[tuple[httpx.AsyncClient, MovieSettings]]:
    """movie-service whose booking-service URL points at a port nobody listens on."""
    extra = {"booking_service_url": f"http://127.0.0.1:{_closed_port()}", "http_timeout_seconds": 1.0}
    settings = MovieSettings(
        **test_settings_overrides("movie_service", "movie", seed_demo_data=False, **extra)
    )
    async with app_client(create_app(settings)) as c:
        yield c, settings


async def test_seat_map_is_503_when_booking_is_down(
    booking_down_client: tuple[httpx.AsyncClient, MovieSettings], showtime: Builder
) -> None:
    down, settings = booking_down_client
    shown = await showtime()
    response = await down.get(f"/showtimes/{shown['id']}/seats")
    assert response.status_code == 503 and response.json()["error"]["code"] == "service_unavailable"
    admin = {"Authorization": f"Bearer {mint_token(settings, roles=('admin',))}"}
    refused = await down.delete(f"/showtimes/{shown['id']}", headers=admin)
    assert refused.status_code == 503
    later = {"starts_at": (datetime.fromisoformat(shown["starts_at"]) + timedelta(days=1)).isoformat()}
    not_moved = await down.patch(f"/showtimes/{shown['id']}", json=later, headers=admin)
    assert not_moved.status_code == 503 and not_moved.json()["error"]["code"] == "service_unavailable"
    assert (await down.get(f"/movies/{shown['movie_id']}")).status_code == 200


async def test_internal_look_up_follows_the_contract(
    client: httpx.AsyncClient,
    internal: dict[str, str],
    showtime: Builder,
    theater: Builder,
    auditorium: Builder,
) -> None:
    cinema = await theater(address="2 Ly Thai To, Hoan Kiem")
    shown = await showtime(auditorium_id=(await auditorium(cinema["id"]))["id"])
    url = f"/internal/showtimes/{shown['id']}"
    assert (await client.get(url)).status_code == 404
    assert (await client.get(url, headers={"X-Internal-Token": "wrong"})).status_code == 404
    body = (await client.get(url, headers=internal)).json()
    assert set(body) == {
        "showtime_id", "movie_id", "movie_title", "theater_id", "theater_name", "theater_address", "city",
        "time_zone", "auditorium_id", "auditorium_name", "starts_at", "ends_at", "currency", "seats",
    }  # fmt: skip
    assert body["showtime_id"] == shown["id"] and body["movie_title"] == shown["movie_title"]
    assert body["time_zone"] == shown["time_zone"]
    assert (body["theater_id"], body["theater_address"]) == (cinema["id"], "2 Ly Thai To, Hoan Kiem")
    assert body["seats"][0] == {"seat_id": "A1", "row": "A", "number": 1, "tier": "standard", "price": 90000}
    assert len(body["seats"]) == 10 and body["currency"] == "VND"
    assert (await client.get(f"/internal/showtimes/{uuid.uuid4()}", headers=internal)).status_code == 404


async def test_a_renewal_that_finds_nothing_changed_reuses_the_rendered_map(
    settings: MovieSettings,
    booking_app: FastAPI,
    showtime: Builder,
    seat_statuses: SeatStatusTable,
    showtime_facts: Callable[..., ShowtimeFacts],
) -> None:
    """Statuses are asked of booking again every second. When booking says the same, they keep
    their serial, so the rendered map and its gzip copy are reused: a 10,000-seat map is
    rendered and compressed once per change, not once per second."""
    shown = await showtime()
    showtime_id = uuid.UUID(shown["id"])
    seat_statuses[shown["id"]] = {"held": ["A2"], "booked": ["B4"]}
    client = ServiceClient("booking", "http://booking", settings, httpx.ASGITransport(app=booking_app))
    reader = SeatStatusReader(client, ttl_seconds=0)  # no micro-cache: every read asks booking
    layout = build_layout("v1", showtime_facts(100, 100, showtime_id))

    first, _ = await reader.get(showtime_id)
    again, from_cache = await reader.get(showtime_id)
    assert not from_cache and again.serial == first.serial
    assert layout.render(again) is layout.render(first)
    assert await layout.render_gzip(again) is await layout.render_gzip(first)

    seat_statuses[shown["id"]] = {"held": ["A2", "A3"], "booked": ["B4"]}
    changed, from_cache = await reader.get(showtime_id)
    assert not from_cache and changed.serial != first.serial and changed.held == {"A2", "A3"}
    assert b'"seat_id":"A3","row":"A","number":3,"tier":"standard","price":90000,"status":"held"' in (
        layout.render(changed)
    )


async def test_seat_map_is_gzipped_for_clients_that_accept_it(
    client: httpx.AsyncClient, auditorium: Builder, showtime: Builder, seat_statuses: SeatStatusTable
) -> None:
    hall = await auditorium(layout={"rows": [{"seats": 10}] * 10})
    shown = await showtime(auditorium_id=hall["id"])
    seat_statuses[shown["id"]] = {"held": ["A2"], "booked": ["B4"]}
    url = f"/showtimes/{shown['id']}/seats"
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    packed = await client.get(url, headers={"Accept-Encoding": "gzip"})
    refused = await client.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert all(a.headers["vary"] == "Accept-Encoding" for a in (plain, packed, refused))
    assert packed.json() == plain.json() == refused.json()  # httpx decodes gzip
    assert packed.num_bytes_downloaded < len(plain.content) / 3


async def test_demo_seed_runs_once_even_when_two_replicas_start_together(settings: MovieSettings) -> None:
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    name, suffix, now = f"test-{uuid.uuid4().hex[:8]}", f" [{uuid.uuid4().hex[:6]}]", datetime.now(UTC)

    async def replica() -> bool:
        async with sessions() as session, session.begin():
            return await seed_demo_data(session, 15, now, name=name, suffix=suffix)

    try:
        assert sorted(await asyncio.gather(replica(), replica())) == [False, True]
    finally:
        await engine.dispose()


async def test_demo_programme_has_what_the_readme_promises(
    client: httpx.AsyncClient, settings: MovieSettings
) -> None:
    engine = create_engine(settings)
    suffix = f" [{uuid.uuid4().hex[:6]}]"
    seeded_at = datetime.now(UTC)
    async with create_sessionmaker(engine)() as session, session.begin():
        await seed_demo_data(session, 15, seeded_at, name=f"test-{suffix}", suffix=suffix)
        theaters = (await session.scalars(select(Theater).where(Theater.name.endswith(suffix)))).all()
        halls = (
            await session.scalars(
                select(Auditorium).where(Auditorium.theater_id.in_([t.id for t in theaters]))
            )
        ).all()
    await engine.dispose()
    assert len(theaters) == 3 and {t.city for t in theaters} == {"Hanoi", "Ho Chi Minh City"}
    largest = max(halls, key=lambda h: h.seat_count)
    assert largest.seat_count >= 200 and tiers_of(largest.layout) == {"standard", "vip", "couple"}
    listed = (await client.get("/showtimes", params={"theater_id": str(theaters[0].id), "limit": 100})).json()
    # "The next 7 days" are the theater's: today and six more of its local days. (Not "later
    # than now + 6 days": the last show, 23:00 in Vietnam, is 16:00 UTC, so that failed
    # between 16:00 and 17:00 UTC every day.)
    zone = ZoneInfo(theaters[0].time_zone)
    last = max(datetime.fromisoformat(s["starts_at"]) for s in listed["items"])
    assert last.astimezone(zone).date() == seeded_at.astimezone(zone).date() + timedelta(days=6)
    assert len({s["movie_id"] for s in listed["items"]}) >= 10
