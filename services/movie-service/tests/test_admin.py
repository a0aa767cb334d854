from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

Builder = Callable[..., Awaitable[dict[str, Any]]]
Schedule = Callable[..., Awaitable[httpx.Response]]
PRICES = {"standard": 90000, "vip": 130000, "couple": 220000}
WRITES = [
    ("POST", "/movies"),
    ("PATCH", "/movies/{id}"),
    ("DELETE", "/movies/{id}"),
    ("POST", "/theaters"),
    ("PATCH", "/theaters/{id}"),
    ("DELETE", "/theaters/{id}"),
    ("POST", "/auditoriums"),
    ("PATCH", "/auditoriums/{id}"),
    ("DELETE", "/auditoriums/{id}"),
    ("POST", "/showtimes"),
    ("PATCH", "/showtimes/{id}"),
    ("DELETE", "/showtimes/{id}"),
]


def _soon(hours: float) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(second=0, microsecond=0)


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_writes_need_a_token_and_the_admin_role(
    client: httpx.AsyncClient, user: dict[str, str], method: str, path: str
) -> None:
    url = path.format(id=uuid.uuid4())
    anonymous = await client.request(method, url, json={})
    not_admin = await client.request(method, url, json={}, headers=user)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert not_admin.status_code == 403 and not_admin.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("method", "path"), [w for w in WRITES if "{id}" in w[1]])
async def test_writes_to_unknown_ids_are_404(
    client: httpx.AsyncClient, admin: dict[str, str], method: str, path: str
) -> None:
    body = {} if method == "DELETE" else {"name": "x"} if "theaters" in path or "auditoriums" in path else {}
    response = await client.request(method, path.format(id=uuid.uuid4()), json=body, headers=admin)
    assert response.status_code == 404, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/movies", {"duration_minutes": 90}),
        ("/movies", {"title": "x", "duration_minutes": 0}),
        ("/movies", {"title": "x", "duration_minutes": 90, "poster_url": "not a url"}),
        ("/movies", {"title": "x", "duration_minutes": 90, "release_date": "2025-02-30"}),
        ("/movies", {"title": "x", "duration_minutes": 90, "release_date": 0}),  # not the Unix epoch
        ("/movies", {"title": "x", "duration_minutes": 90, "release_date": "2025-02-03T00:00:00"}),
        ("/movies", {"title": "x", "duration_minutes": 90, "role": "admin"}),
        ("/theaters", {"name": "x", "city": "Hanoi", "time_zone": "Mars/Olympus"}),
        ("/theaters", {"name": "x", "city": "Hanoi"}),
        ("/auditoriums", {"theater_id": "nope", "name": "x", "layout": {"rows": [{"seats": 5}]}}),
        ("/auditoriums", {"theater_id": str(uuid.uuid4()), "name": "x", "layout": {"rows": []}}),
        ("/auditoriums", {"theater_id": str(uuid.uuid4()), "name": "x", "layout": {"rows": [{"seats": 0}]}}),
        (
            "/auditoriums",
            {
                "theater_id": str(uuid.uuid4()),
                "name": "x",
                "layout": {"rows": [{"seats": 5, "tier": "gold"}]},
            },
        ),
        (
            "/auditoriums",
            {
                "theater_id": str(uuid.uuid4()),
                "name": "x",
                "layout": {"rows": [{"label": "A", "seats": 5}] * 2},
            },
        ),
        (
            "/auditoriums",
            {
                "theater_id": str(uuid.uuid4()),
                "name": "x",
                "layout": {"rows": [{"seats": 5, "aisles_after": [5]}]},
            },
        ),
        ("/showtimes", {"movie_id": str(uuid.uuid4()), "auditorium_id": str(uuid.uuid4()), "prices": PRICES}),
        (
            "/showtimes",
            {
                "movie_id": str(uuid.uuid4()),
                "auditorium_id": str(uuid.uuid4()),
                "starts_at": "2030-01-01T10:00:00",
                "prices": PRICES,
            },
        ),
        (
            "/showtimes",
            {
                "movie_id": str(uuid.uuid4()),
                "auditorium_id": str(uuid.uuid4()),
                "starts_at": "2030-01-01T10:00:00Z",
                "prices": {"standard": 9.5},
            },
        ),
    ],
)
async def test_invalid_bodies_are_422(
    client: httpx.AsyncClient, admin: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    response = await client.post(path, json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("movies", "title"),
        ("movies", "genres"),
        ("theaters", "name"),
        ("theaters", "address"),
        ("auditoriums", "name"),
        ("auditoriums", "layout"),
        ("showtimes", "prices"),
        ("showtimes", "starts_at"),
    ],
)
async def test_a_patch_may_leave_a_field_out_but_not_send_null(
    client: httpx.AsyncClient, admin: dict[str, str], showtime: Builder, kind: str, field: str
) -> None:
    created = await showtime()
    ids = {
        "movies": created["movie_id"],
        "theaters": created["theater_id"],
        "auditoriums": created["auditorium_id"],
        "showtimes": created["id"],
    }
    url = f"/{kind}/{ids[kind]}"
    refused = await client.patch(url, json={field: None}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert f"{field} cannot be null" in refused.json()["error"]["message"]
    assert (await client.patch(url, json={}, headers=admin)).status_code == 200


async def test_null_clears_a_movie_s_optional_field(
    client: httpx.AsyncClient, admin: dict[str, str], movie: Builder
) -> None:
    film = await movie(rating="T13")
    response = await client.patch(f"/movies/{film['id']}", json={"rating": None}, headers=admin)
    assert response.status_code == 200 and response.json()["rating"] is None


async def test_theater_name_is_unique_in_its_city(
    client: httpx.AsyncClient, admin: dict[str, str], theater: Builder
) -> None:
    first = await theater()
    clash = {"name": first["name"].upper(), "city": "hanoi", "time_zone": "Asia/Ho_Chi_Minh"}
    response = await client.post("/theaters", json=clash, headers=admin)
    assert response.status_code == 409
    other_city = await client.post("/theaters", json={**clash, "city": "Da Nang"}, headers=admin)
    assert other_city.status_code == 201


async def test_a_showtime_ends_after_the_film_and_cleaning(
    client: httpx.AsyncClient, movie: Builder, auditorium: Builder, showtime: Builder, schedule: Schedule
) -> None:
    film, hall = await movie(duration_minutes=100), await auditorium()
    starts = _soon(30)
    created = await showtime(movie_id=film["id"], auditorium_id=hall["id"], starts_at=starts)
    assert datetime.fromisoformat(created["ends_at"]) == starts + timedelta(minutes=100)
    # The next showtime may start once the 15 cleaning minutes are over, not a minute before.
    too_early = starts + timedelta(minutes=114)
    response = await schedule(film["id"], hall["id"], too_early)
    assert response.status_code == 409 and response.json()["error"]["code"] == "showtime_overlap"
    before = await schedule(film["id"], hall["id"], starts - timedelta(minutes=60))
    assert before.status_code == 409
    assert (await schedule(film["id"], hall["id"], starts + timedelta(minutes=115))).status_code == 201


async def test_concurrent_overlapping_showtimes_one_wins(
    client: httpx.AsyncClient, movie: Builder, auditorium: Builder, schedule: Schedule
) -> None:
    film, hall = await movie(), await auditorium()
    starts = [_soon(40) + timedelta(minutes=m) for m in (0, 10, 20, 30)]
    answers = await asyncio.gather(*(schedule(film["id"], hall["id"], s) for s in starts))
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409]


async def test_past_start_is_refused(
    client: httpx.AsyncClient, movie: Builder, auditorium: Builder, schedule: Schedule
) -> None:
    film, hall = await movie(), await auditorium()
    response = await schedule(film["id"], hall["id"], datetime.now(UTC) - timedelta(minutes=5))
    assert response.status_code == 422 and response.json()["error"]["code"] == "starts_in_past"


async def test_unknown_movie_or_auditorium_is_404(
    client: httpx.AsyncClient, movie: Builder, auditorium: Builder, schedule: Schedule
) -> None:
    film, hall = await movie(), await auditorium()
    assert (await schedule(str(uuid.uuid4()), hall["id"], _soon(5))).status_code == 404
    assert (await schedule(film["id"], str(uuid.uuid4()), _soon(5))).status_code == 404


async def test_every_tier_of_the_auditorium_needs_a_price(
    client: httpx.AsyncClient, admin: dict[str, str], movie: Builder, auditorium: Builder
) -> None:
    film, hall = await movie(), await auditorium()
    body = {"movie_id": film["id"], "auditorium_id": hall["id"], "starts_at": _soon(6).isoformat()}
    response = await client.post("/showtimes", json={**body, "prices": {"standard": 1}}, headers=admin)
    assert response.status_code == 422 and response.json()["error"]["details"] == ["couple", "vip"]


async def test_deleting_a_movie_with_upcoming_showtimes_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], movie: Builder, showtime: Builder
) -> None:
    film = await movie()
    shown = await showtime(movie_id=film["id"])
    refused = await client.delete(f"/movies/{film['id']}", headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "has_showtimes"
    assert (await client.delete(f"/showtimes/{shown['id']}", headers=admin)).status_code == 204
    assert (await client.delete(f"/movies/{film['id']}", headers=admin)).status_code == 204
    assert (await client.get(f"/movies/{film['id']}")).status_code == 404


async def test_deleting_a_showtime_with_bookings_is_409(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    showtime: Builder,
    seat_statuses: dict[str, dict[str, list[str]]],
) -> None:
    held, booked = await showtime(), await showtime()
    seat_statuses[held["id"]] = {"held": ["A1"], "booked": []}
    seat_statuses[booked["id"]] = {"held": [], "booked": ["B2"]}
    for taken in (held, booked):
        response = await client.delete(f"/showtimes/{taken['id']}", headers=admin)
        assert response.status_code == 409 and response.json()["error"]["code"] == "has_bookings"
    assert (await client.get(f"/showtimes/{held['id']}/seats")).status_code == 200


async def test_layout_and_duration_are_fixed_while_showtimes_are_upcoming(
    client: httpx.AsyncClient, admin: dict[str, str], showtime: Builder
) -> None:
    shown = await showtime()
    layout = {"rows": [{"seats": 3}]}
    hall = await client.patch(
        f"/auditoriums/{shown['auditorium_id']}", json={"layout": layout}, headers=admin
    )
    film = await client.patch(f"/movies/{shown['movie_id']}", json={"duration_minutes": 200}, headers=admin)
    assert hall.status_code == film.status_code == 409
    renamed = await client.patch(
        f"/auditoriums/{shown['auditorium_id']}", json={"name": "IMAX"}, headers=admin
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "IMAX"


async def test_an_admin_update_is_read_back_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], movie: Builder, showtime: Builder
) -> None:
    film = await movie()
    shown = await showtime(movie_id=film["id"])
    assert (await client.get(f"/movies/{film['id']}")).json()["title"] == film["title"]
    listed = {"genre": "drama", "q": film["title"]}
    assert (await client.get("/movies", params=listed)).json()["items"][0]["title"] == film["title"]
    new_title = f"Renamed {uuid.uuid4().hex[:8]}"
    updated = await client.patch(f"/movies/{film['id']}", json={"title": new_title}, headers=admin)
    assert updated.status_code == 200 and updated.json()["title"] == new_title
    assert (await client.get(f"/movies/{film['id']}")).json()["title"] == new_title
    assert (await client.get("/movies", params={"q": new_title})).json()["items"][0]["id"] == film["id"]
    by_movie = await client.get("/showtimes", params={"movie_id": film["id"]})
    assert by_movie.json()["items"][0]["movie_title"] == new_title
    assert shown["movie_title"] == film["title"]


async def test_a_price_change_reaches_the_seat_map_and_booking_at_once(
    client: httpx.AsyncClient, admin: dict[str, str], internal: dict[str, str], showtime: Builder
) -> None:
    shown = await showtime()
    before = (await client.get(f"/internal/showtimes/{shown['id']}", headers=internal)).json()
    assert {s["tier"]: s["price"] for s in before["seats"]}["standard"] == 90000
    await client.get(f"/showtimes/{shown['id']}/seats")
    new_prices = {"standard": 95000, "vip": 140000, "couple": 230000}
    response = await client.patch(f"/showtimes/{shown['id']}", json={"prices": new_prices}, headers=admin)
    assert response.status_code == 200 and response.json()["prices"] == new_prices
    after = (await client.get(f"/internal/showtimes/{shown['id']}", headers=internal)).json()
    seat_map = (await client.get(f"/showtimes/{shown['id']}/seats")).json()
    assert {s["tier"]: s["price"] for s in after["seats"]} == new_prices
    assert {s["tier"]: s["price"] for s in seat_map["seats"]} == new_prices


async def test_a_showtime_with_bookings_cannot_be_moved_but_can_be_repriced(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    showtime: Builder,
    seat_statuses: dict[str, dict[str, list[str]]],
) -> None:
    """Each booking keeps the start it was made for: moving its showtime would leave its copy,
    its cut-off, its tickets mail and its doors at the old time."""
    held, booked, free = await showtime(), await showtime(), await showtime()
    seat_statuses[held["id"]] = {"held": ["A1"], "booked": []}
    seat_statuses[booked["id"]] = {"held": [], "booked": ["B2"]}
    later = {"starts_at": _soon(24 * 60).isoformat()}
    for taken in (held, booked):
        url = f"/showtimes/{taken['id']}"
        refused = await client.patch(url, json=later, headers=admin)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "has_bookings"
        same_start = await client.patch(url, json={"starts_at": taken["starts_at"]}, headers=admin)
        assert same_start.status_code == 200, "not a move"
        assert same_start.json()["starts_at"] == taken["starts_at"], "the refused move changed nothing"
        prices = {"standard": 99000, "vip": 150000, "couple": 250000}
        repriced = await client.patch(url, json={"prices": prices}, headers=admin)
        assert repriced.status_code == 200 and repriced.json()["prices"] == prices
    moved = await client.patch(f"/showtimes/{free['id']}", json=later, headers=admin)
    assert moved.status_code == 200 and moved.json()["starts_at"] != free["starts_at"]


async def test_moving_a_showtime_keeps_the_rules(
    client: httpx.AsyncClient, admin: dict[str, str], auditorium: Builder, showtime: Builder
) -> None:
    hall = await auditorium()
    first = await showtime(auditorium_id=hall["id"], starts_at=_soon(50))
    second = await showtime(auditorium_id=hall["id"], starts_at=_soon(60))
    onto_first = {"starts_at": _soon(50.5).isoformat()}
    past = {"starts_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    moved_to = _soon(70)  # read once: the minute may turn before the answer is compared
    moved = {"starts_at": moved_to.isoformat()}
    url = f"/showtimes/{second['id']}"
    assert (await client.patch(url, json=onto_first, headers=admin)).status_code == 409
    assert (await client.patch(url, json=past, headers=admin)).status_code == 422
    response = await client.patch(url, json=moved, headers=admin)
    assert response.status_code == 200 and response.json()["starts_at"] == moved_to.isoformat().replace(
        "+00:00", "Z"
    )
    assert first["id"] != second["id"]
