"""The read side: catalog pages (cached JSON), the seat map and booking's showtime look-up."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from movie_service import repository
from movie_service.catalog_cache import CatalogCache
from movie_service.config import MovieSettings
from movie_service.encoding import GZIP_MIN_BYTES
from movie_service.metrics import SEAT_MAP_REQUESTS
from movie_service.models import Auditorium, Movie, Theater
from movie_service.repository import MovieFilter, ShowtimeFilter
from movie_service.schemas import (
    AuditoriumBrief,
    AuditoriumOut,
    MovieDetail,
    MovieOut,
    MoviePage,
    ShowtimeOut,
    ShowtimePage,
    TheaterOut,
    TheaterPage,
)
from movie_service.seat_map import SeatMapLayouts, ShowtimeFacts, build_layout
from movie_service.seat_schemas import InternalShowtime
from movie_service.seat_status import SeatStatusReader
from servicekit.errors import NotFound

UPCOMING_ON_DETAIL = 50


def showtime_out(row: Sequence[Any]) -> ShowtimeOut:
    values: tuple[Any, ...] = tuple(row)
    showtime, title, theater, city, time_zone, auditorium = values[:6]
    return ShowtimeOut(
        id=showtime.id,
        movie_id=showtime.movie_id,
        movie_title=title,
        theater_id=showtime.theater_id,
        theater_name=theater,
        city=city,
        time_zone=time_zone,
        auditorium_id=showtime.auditorium_id,
        auditorium_name=auditorium,
        starts_at=showtime.starts_at,
        ends_at=showtime.ends_at,
        currency=showtime.currency,
        prices=showtime.prices(),
    )


async def movies_json(
    session: AsyncSession, cache: CatalogCache, where: MovieFilter, page: tuple[str, int, int]
) -> str:
    """A page of movies as JSON (cached until the next admin write)."""
    sort, limit, offset = page

    async def compute() -> str:
        movies, total = await repository.list_movies(session, where, sort, limit, offset)
        items = [MovieOut.model_validate(m) for m in movies]
        return MoviePage(items=items, total=total, limit=limit, offset=offset).model_dump_json()

    params = {**asdict(where), "sort": sort, "limit": limit, "offset": offset}
    return await cache.cached("movies", params, _settings(cache).catalog_cache_seconds, compute)


async def movie_json(session: AsyncSession, cache: CatalogCache, movie_id: uuid.UUID) -> str:
    """One movie with its upcoming showtimes as JSON; 404 when unknown."""

    async def compute() -> str:
        movie = await repository.get(session, Movie, movie_id)
        if movie is None:
            raise NotFound("Movie not found")
        upcoming = ShowtimeFilter(movie_id=movie_id, upcoming_after=datetime.now(UTC))
        rows, _ = await repository.list_showtimes(session, upcoming, UPCOMING_ON_DETAIL, 0)
        out = MovieOut.model_validate(movie).model_dump()
        return MovieDetail(**out, showtimes=[showtime_out(r) for r in rows]).model_dump_json()

    ttl = _settings(cache).upcoming_cache_seconds
    return await cache.cached("movie", {"id": movie_id}, ttl, compute)


async def showtimes_json(
    session: AsyncSession, cache: CatalogCache, where: ShowtimeFilter, page: tuple[int, int]
) -> str:
    """A page of showtimes as JSON: on the given local dates, else the upcoming ones."""
    limit, offset = page
    if where.date_from is None:
        where = ShowtimeFilter(**{**asdict(where), "upcoming_after": datetime.now(UTC)})

    async def compute() -> str:
        rows, total = await repository.list_showtimes(session, where, limit, offset)
        items = [showtime_out(r) for r in rows]
        return ShowtimePage(items=items, total=total, limit=limit, offset=offset).model_dump_json()

    params: dict[str, object] = {**asdict(where), "upcoming_after": None, "limit": limit, "offset": offset}
    return await cache.cached("showtimes", params, _settings(cache).upcoming_cache_seconds, compute)


async def theaters_json(
    session: AsyncSession, cache: CatalogCache, city: str | None, page: tuple[int, int]
) -> str:
    """A page of theaters with their auditoriums as JSON."""
    limit, offset = page

    async def compute() -> str:
        theaters, total = await repository.list_theaters(session, city, limit, offset)
        halls = await repository.auditoriums_of(session, [t.id for t in theaters])
        items = [_theater_out(t, [h for h in halls if h.theater_id == t.id]) for t in theaters]
        return TheaterPage(items=items, total=total, limit=limit, offset=offset).model_dump_json()

    params: dict[str, object] = {"city": city, "limit": limit, "offset": offset}
    return await cache.cached("theaters", params, _settings(cache).catalog_cache_seconds, compute)


def _theater_out(theater: Theater, halls: Sequence[Auditorium]) -> TheaterOut:
    briefs = [AuditoriumBrief.model_validate(h) for h in halls]
    return TheaterOut(
        id=theater.id,
        name=theater.name,
        city=theater.city,
        address=theater.address,
        time_zone=theater.time_zone,
        auditoriums=briefs,
    )


async def auditorium_out(session: AsyncSession, auditorium_id: uuid.UUID) -> AuditoriumOut:
    """An auditorium with its seat layout; 404 when unknown."""
    auditorium = await repository.get(session, Auditorium, auditorium_id)
    if auditorium is None:
        raise NotFound("Auditorium not found")
    return AuditoriumOut.model_validate(auditorium)


async def showtime_facts(session: AsyncSession, showtime_id: uuid.UUID) -> ShowtimeFacts:
    """A showtime with its movie, theater, auditorium layout and prices; 404 when unknown."""
    row = await repository.showtime_with_context(session, showtime_id)
    if row is None:
        raise NotFound("Showtime not found")
    values: tuple[Any, ...] = tuple(row)
    showtime, title, theater, city, time_zone, auditorium, layout, address = values
    return ShowtimeFacts(
        showtime.id, showtime.movie_id, title, showtime.theater_id, theater, address, city, time_zone,
        showtime.auditorium_id, auditorium, showtime.starts_at, showtime.ends_at,
        showtime.currency, showtime.prices(), layout,
    )  # fmt: skip


async def internal_showtime_json(session: AsyncSession, cache: CatalogCache, showtime_id: uuid.UUID) -> str:
    """Booking's look-up (docs/contracts.md): showtime, seats and prices, cached until an admin write."""

    async def compute() -> str:
        facts = await showtime_facts(session, showtime_id)
        body = {k: v for k, v in facts.__dict__.items() if k not in ("prices", "layout")}
        return InternalShowtime(**body, seats=facts.seats()).model_dump_json()

    return await cache.cached("internal-showtime", {"id": showtime_id}, 3600, compute)


async def seat_map_body(
    session: AsyncSession,
    cache: CatalogCache,
    layouts: SeatMapLayouts,
    statuses: SeatStatusReader,
    showtime_id: uuid.UUID,
    gzip: bool = False,
) -> tuple[bytes, float, bool]:
    """The seat map JSON (layout rendered once per catalog version, statuses from booking, <= 1 s
    old), until when it may be shown (epoch seconds), and whether it is gzip-compressed
    (when asked and worth it)."""
    version = await cache.version()
    layout = layouts.get(showtime_id, version)
    if layout is None:
        layout = build_layout(version, await showtime_facts(session, showtime_id))
        layouts.put(showtime_id, layout)
    seat_statuses, from_cache = await statuses.get(showtime_id)
    SEAT_MAP_REQUESTS.labels("hit" if from_cache else "miss").inc()
    body = layout.render(seat_statuses)
    if gzip and len(body) >= GZIP_MIN_BYTES:
        return await layout.render_gzip(seat_statuses), seat_statuses.fresh_until, True
    return body, seat_statuses.fresh_until, False


def _settings(cache: CatalogCache) -> MovieSettings:
    settings = cache.settings
    assert isinstance(settings, MovieSettings)
    return settings


async def theater_out(session: AsyncSession, theater: Theater) -> TheaterOut:
    """A theater with its auditoriums."""
    return _theater_out(theater, await repository.auditoriums_of(session, [theater.id]))


async def showtime_by_id(session: AsyncSession, showtime_id: uuid.UUID) -> ShowtimeOut:
    """One showtime with its movie, theater and auditorium names; 404 when unknown."""
    row = await repository.showtime_with_context(session, showtime_id)
    if row is None:
        raise NotFound("Showtime not found")
    return showtime_out(row)
