from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

Builder = Callable[..., Awaitable[dict[str, Any]]]


async def test_movies_are_paginated_with_total(client: httpx.AsyncClient, movie: Builder) -> None:
    genre = f"g{uuid.uuid4().hex[:8]}"
    titles = sorted([f"A {genre}", f"B {genre}", f"C {genre}"])
    for title in titles:
        await movie(title=title, genres=[genre])
    first = (await client.get("/movies", params={"genre": genre, "limit": 2})).json()
    second = (await client.get("/movies", params={"genre": genre, "limit": 2, "offset": 2})).json()
    assert first["total"] == second["total"] == 3
    assert [m["title"] for m in first["items"] + second["items"]] == titles
    assert (first["limit"], second["offset"]) == (2, 2)


async def test_movies_sort_by_title_or_release_date(client: httpx.AsyncClient, movie: Builder) -> None:
    genre = f"g{uuid.uuid4().hex[:8]}"
    await movie(title="Zed", genres=[genre], release_date="2024-01-01")
    await movie(title="Alpha", genres=[genre], release_date="2025-06-01")
    by_title = (await client.get("/movies", params={"genre": genre, "sort": "-title"})).json()
    newest = (await client.get("/movies", params={"genre": genre, "sort": "-release_date"})).json()
    assert [m["title"] for m in by_title["items"]] == ["Zed", "Alpha"]
    assert [m["title"] for m in newest["items"]] == ["Alpha", "Zed"]


async def test_genre_filter_is_case_insensitive(client: httpx.AsyncClient, movie: Builder) -> None:
    genre = f"g{uuid.uuid4().hex[:8]}"
    created = await movie(genres=[genre.upper(), "comedy"])
    found = (await client.get("/movies", params={"genre": genre.upper()})).json()
    assert created["genres"] == [genre, "comedy"]
    assert [m["id"] for m in found["items"]] == [created["id"]]


async def test_text_query_matches_title_word_prefixes(client: httpx.AsyncClient, movie: Builder) -> None:
    word = f"zq{uuid.uuid4().hex[:8]}"
    wanted = await movie(title=f"The {word}ers Return")
    await movie(title=f"Other {uuid.uuid4().hex[:8]}")
    found = (await client.get("/movies", params={"q": f"{word[:6]} retu"})).json()
    assert [m["id"] for m in found["items"]] == [wanted["id"]]
    assert (await client.get("/movies", params={"q": "!!!"})).json()["total"] == 0


async def test_date_filter_uses_the_theater_time_zone(
    client: httpx.AsyncClient, movie: Builder, theater: Builder, auditorium: Builder, showtime: Builder
) -> None:
    genre = f"g{uuid.uuid4().hex[:8]}"
    local_day = datetime.now(UTC).date() + timedelta(days=3)
    # 01:00 in Ho Chi Minh City is 18:00 UTC on the day before.
    starts = datetime.combine(local_day, datetime.min.time(), ZoneInfo("Asia/Ho_Chi_Minh")) + timedelta(
        hours=1
    )
    hall = await auditorium()
    shown = await movie(genres=[genre])
    await movie(genres=[genre])
    await showtime(movie_id=shown["id"], auditorium_id=hall["id"], starts_at=starts)
    on_day = (await client.get("/movies", params={"genre": genre, "date": local_day.isoformat()})).json()
    day_before = (local_day - timedelta(days=1)).isoformat()
    assert [m["id"] for m in on_day["items"]] == [shown["id"]]
    assert (await client.get("/movies", params={"genre": genre, "date": day_before})).json()["total"] == 0
    listed = (await client.get("/showtimes", params={"movie_id": shown["id"], "date": day_before})).json()
    assert listed["total"] == 0


async def test_showtimes_filter_by_movie_theater_city_and_date(
    client: httpx.AsyncClient, movie: Builder, theater: Builder, auditorium: Builder, showtime: Builder
) -> None:
    city = f"City {uuid.uuid4().hex[:8]}"
    here = await theater(city=city)
    hall = await auditorium(theater_id=here["id"])
    film = await movie()
    first = await showtime(movie_id=film["id"], auditorium_id=hall["id"], starts_at=_at(days=2, hour=10))
    second = await showtime(auditorium_id=hall["id"], starts_at=_at(days=3, hour=10))
    by_city = (await client.get("/showtimes", params={"city": city.upper()})).json()
    by_theater = (await client.get("/showtimes", params={"theater_id": here["id"], "limit": 1})).json()
    by_movie = (await client.get("/showtimes", params={"movie_id": film["id"]})).json()
    day = _at(days=3, hour=10).astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).date().isoformat()
    by_date = (await client.get("/showtimes", params={"city": city, "date": day})).json()
    assert [s["id"] for s in by_city["items"]] == [first["id"], second["id"]]
    assert by_theater["total"] == 2 and [s["id"] for s in by_theater["items"]] == [first["id"]]
    assert [s["id"] for s in by_movie["items"]] == [first["id"]]
    assert [s["id"] for s in by_date["items"]] == [second["id"]]
    assert first["prices"] == {"standard": 90000, "vip": 130000, "couple": 220000}
    assert first["currency"] == "VND" and first["time_zone"] == "Asia/Ho_Chi_Minh"


def _at(days: int, hour: int) -> datetime:
    local = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date() + timedelta(days=days)
    return datetime.combine(local, datetime.min.time(), ZoneInfo("Asia/Ho_Chi_Minh")) + timedelta(hours=hour)


async def test_movie_detail_lists_upcoming_showtimes(
    client: httpx.AsyncClient, movie: Builder, auditorium: Builder, showtime: Builder
) -> None:
    film = await movie()
    hall = await auditorium()
    later = await showtime(movie_id=film["id"], auditorium_id=hall["id"], starts_at=_at(days=5, hour=20))
    sooner = await showtime(movie_id=film["id"], auditorium_id=hall["id"], starts_at=_at(days=4, hour=20))
    detail = (await client.get(f"/movies/{film['id']}")).json()
    assert detail["title"] == film["title"]
    assert [s["id"] for s in detail["showtimes"]] == [sooner["id"], later["id"]]


async def test_theaters_filter_by_city_and_list_auditoriums(
    client: httpx.AsyncClient, theater: Builder, auditorium: Builder
) -> None:
    city = f"City {uuid.uuid4().hex[:8]}"
    here = await theater(city=city)
    hall = await auditorium(theater_id=here["id"])
    listed = (await client.get("/theaters", params={"city": city.lower()})).json()
    assert listed["total"] == 1
    assert listed["items"][0]["auditoriums"] == [{"id": hall["id"], "name": hall["name"], "seat_count": 10}]
    layout = (await client.get(f"/auditoriums/{hall['id']}")).json()["layout"]
    assert [r["label"] for r in layout["rows"]] == ["A", "B", "K"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/movies/not-a-uuid", {}),
        ("/movies", {"date": "2026-13-45"}),
        ("/movies", {"date": "0"}),  # pydantic's lax date: a Unix timestamp, 1970-01-01
        ("/movies", {"date": "86400"}),
        ("/movies", {"date": "2026-01-01T00:00:00Z"}),
        ("/showtimes", {"date": "0"}),
        ("/showtimes", {"date_from": "0"}),
        ("/showtimes", {"date_from": "2026-01-01", "date_to": "1767484800"}),
        ("/movies", {"limit": 0}),
        ("/movies", {"limit": 1000}),
        ("/movies", {"offset": -1}),
        ("/movies", {"sort": "rating"}),
        ("/showtimes", {"movie_id": "123"}),
        ("/showtimes", {"date": "tomorrow"}),
        ("/showtimes", {"date_from": "2026-01-10", "date_to": "2026-01-01"}),
        ("/showtimes", {"date_to": "2026-01-01"}),
        ("/showtimes/xyz/seats", {}),
        ("/auditoriums/1", {}),
    ],
)
async def test_malformed_ids_and_dates_are_422(
    client: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize("path", ["/movies/{}", "/showtimes/{}/seats", "/auditoriums/{}"])
async def test_unknown_ids_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path.format(uuid.uuid4()))
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_swagger_describes_every_endpoint(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ours = {"catalog", "admin", "internal"}
    operations = [op for path in spec["paths"].values() for op in path.values() if ours & set(op["tags"])]
    assert len(operations) == 19
    assert all(op.get("description") and "422" in op["responses"] for op in operations)
    schemas = spec["components"]["schemas"]
    assert schemas["MovieCreate"]["examples"] and schemas["ShowtimeCreate"]["examples"]
    assert "503" in spec["paths"]["/showtimes/{showtime_id}/seats"]["get"]["responses"]
    assert (await client.get("/docs")).status_code == 200
