"""The write side (admins): movies, theaters, auditoriums and showtimes, with their rules.

Every write commits, then bumps the catalog version so the next read sees it at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from movie_service import repository
from movie_service.catalog_cache import CatalogCache
from movie_service.layout import tiers_of
from movie_service.models import Auditorium, Movie, Showtime, Theater
from movie_service.schemas import (
    AuditoriumCreate,
    AuditoriumUpdate,
    MovieCreate,
    MovieUpdate,
    TheaterCreate,
    TheaterUpdate,
)
from movie_service.seat_schemas import Prices, ShowtimeCreate, ShowtimeUpdate
from movie_service.seat_status import SeatStatusReader
from servicekit.errors import Conflict, NotFound, Unprocessable

E = TypeVar("E")


async def _found(session: AsyncSession, model: type[E], entity_id: uuid.UUID, name: str) -> E:
    entity = await repository.get(session, model, entity_id)
    if entity is None:
        raise NotFound(f"{name} not found")
    return entity


async def _commit(session: AsyncSession, cache: CatalogCache, conflict: str, entity: object = None) -> None:
    """Commit (a unique or overlap violation is a 409), invalidate the catalog cache, reload ``entity``."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(conflict) from exc
    await cache.bump()
    if entity is not None:
        await session.refresh(entity)


def _apply(entity: object, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(entity, name, value)


def _movie_fields(body: MovieCreate | MovieUpdate) -> dict[str, Any]:
    fields = body.model_dump(exclude_unset=True)
    if fields.get("poster_url") is not None:
        fields["poster_url"] = str(fields["poster_url"])
    return fields


async def create_movie(session: AsyncSession, cache: CatalogCache, body: MovieCreate) -> Movie:
    """Add a movie to the catalog."""
    movie = await repository.add(session, Movie(**{"genres": [], "synopsis": "", **_movie_fields(body)}))
    await _commit(session, cache, "Movie conflicts with an existing one", movie)
    return movie


async def update_movie(
    session: AsyncSession, cache: CatalogCache, movie_id: uuid.UUID, body: MovieUpdate
) -> Movie:
    """Change a movie; its duration is fixed while it has showtimes to come (409)."""
    movie = await _found(session, Movie, movie_id, "Movie")
    fields = _movie_fields(body)
    duration_changes = fields.get("duration_minutes", movie.duration_minutes) != movie.duration_minutes
    if duration_changes and await _has_future(session, Showtime.movie_id, movie_id):
        raise Conflict("The duration of a movie with upcoming showtimes cannot change", code="has_showtimes")
    _apply(movie, fields)
    await _commit(session, cache, "Movie conflicts with an existing one", movie)
    return movie


async def delete_movie(session: AsyncSession, cache: CatalogCache, movie_id: uuid.UUID) -> None:
    """Remove a movie (and its past showtimes); refused while it has showtimes to come."""
    movie = await _found(session, Movie, movie_id, "Movie")
    if await _has_future(session, Showtime.movie_id, movie_id):
        raise Conflict("The movie has upcoming showtimes", code="has_showtimes")
    await repository.delete(session, movie)
    await _commit(session, cache, "Movie is in use")


async def _has_future(session: AsyncSession, column: Any, value: uuid.UUID) -> bool:
    return await repository.has_future_showtimes(session, column, value, datetime.now(UTC))


async def create_theater(session: AsyncSession, cache: CatalogCache, body: TheaterCreate) -> Theater:
    """Add a theater (its name is unique within its city)."""
    theater = await repository.add_or_conflict(session, Theater(**body.model_dump()), "Theater exists")
    await _commit(session, cache, "A theater with this name exists in this city", theater)
    return theater


async def update_theater(
    session: AsyncSession, cache: CatalogCache, theater_id: uuid.UUID, body: TheaterUpdate
) -> Theater:
    """Change a theater's name, city, address or time zone."""
    theater = await _found(session, Theater, theater_id, "Theater")
    _apply(theater, body.model_dump(exclude_unset=True))
    await _commit(session, cache, "A theater with this name exists in this city", theater)
    return theater


async def delete_theater(session: AsyncSession, cache: CatalogCache, theater_id: uuid.UUID) -> None:
    """Remove a theater and its auditoriums; refused while it has showtimes to come."""
    theater = await _found(session, Theater, theater_id, "Theater")
    if await _has_future(session, Showtime.theater_id, theater_id):
        raise Conflict("The theater has upcoming showtimes", code="has_showtimes")
    await repository.delete(session, theater)
    await _commit(session, cache, "Theater is in use")


async def create_auditorium(session: AsyncSession, cache: CatalogCache, body: AuditoriumCreate) -> Auditorium:
    """Add an auditorium with its seat layout to a theater."""
    await _found(session, Theater, body.theater_id, "Theater")
    layout = body.layout.model_dump()
    hall = Auditorium(
        theater_id=body.theater_id, name=body.name, layout=layout, seat_count=body.layout.seat_count
    )
    await repository.add_or_conflict(session, hall, "An auditorium with this name exists in the theater")
    await _commit(session, cache, "An auditorium with this name exists in the theater", hall)
    return hall


async def update_auditorium(
    session: AsyncSession, cache: CatalogCache, auditorium_id: uuid.UUID, body: AuditoriumUpdate
) -> Auditorium:
    """Rename an auditorium or change its layout (not while it has showtimes to come)."""
    hall = await _found(session, Auditorium, auditorium_id, "Auditorium")
    if body.layout is not None:
        if await _has_future(session, Showtime.auditorium_id, auditorium_id):
            raise Conflict(
                "The layout of an auditorium with upcoming showtimes is fixed", code="has_showtimes"
            )
        hall.layout, hall.seat_count = body.layout.model_dump(), body.layout.seat_count
    hall.name = body.name or hall.name
    await _commit(session, cache, "An auditorium with this name exists in the theater", hall)
    return hall


async def delete_auditorium(session: AsyncSession, cache: CatalogCache, auditorium_id: uuid.UUID) -> None:
    """Remove an auditorium; refused while it has showtimes to come."""
    hall = await _found(session, Auditorium, auditorium_id, "Auditorium")
    if await _has_future(session, Showtime.auditorium_id, auditorium_id):
        raise Conflict("The auditorium has upcoming showtimes", code="has_showtimes")
    await repository.delete(session, hall)
    await _commit(session, cache, "Auditorium is in use")


def _check_prices(prices: Prices, hall: Auditorium) -> None:
    missing = sorted(t for t in tiers_of(hall.layout) if getattr(prices, t) is None)
    if missing:
        raise Unprocessable(f"prices: missing a price for tier(s) {', '.join(missing)}", details=missing)


async def _schedule(
    session: AsyncSession, showtime: Showtime, starts: datetime, cleaning_minutes: int
) -> None:
    """Place the showtime at ``starts``, ending after the film; refuse a past start or an overlap."""
    if starts <= datetime.now(UTC):
        raise Unprocessable("starts_at: a showtime cannot start in the past", code="starts_in_past")
    movie = await _found(session, Movie, showtime.movie_id, "Movie")
    ends = starts + timedelta(minutes=movie.duration_minutes)
    span = (starts, ends + timedelta(minutes=cleaning_minutes))
    clash = await repository.overlapping_showtime(session, showtime.auditorium_id, span, showtime.id)
    if clash is not None:
        raise Conflict(
            f"The auditorium is busy (showtime {clash.id} until {clash.turnaround_ends_at.isoformat()})",
            code="showtime_overlap",
            details={"showtime_id": str(clash.id)},
        )
    showtime.starts_at, showtime.ends_at, showtime.turnaround_ends_at = starts, ends, span[1]


async def create_showtime(
    session: AsyncSession, cache: CatalogCache, body: ShowtimeCreate, cleaning_minutes: int
) -> Showtime:
    """Schedule a movie in an auditorium: in the future, never overlapping another showtime."""
    await _found(session, Movie, body.movie_id, "Movie")
    hall = await repository.lock_auditorium(session, body.auditorium_id)
    if hall is None:
        raise NotFound("Auditorium not found")
    _check_prices(body.prices, hall)
    showtime = Showtime(
        id=uuid.uuid4(), movie_id=body.movie_id, auditorium_id=hall.id, theater_id=hall.theater_id
    )
    showtime.currency = body.currency
    _set_prices(showtime, body.prices)
    await _schedule(session, showtime, body.starts_at.astimezone(UTC), cleaning_minutes)
    await repository.add_or_conflict(session, showtime, "The auditorium is busy at that time")
    await _commit(session, cache, "The auditorium is busy at that time", showtime)
    return showtime


def _set_prices(showtime: Showtime, prices: Prices) -> None:
    showtime.price_standard, showtime.price_vip, showtime.price_couple = (
        prices.standard,
        prices.vip,
        prices.couple,
    )


async def update_showtime(
    session: AsyncSession,
    cache: CatalogCache,
    statuses: SeatStatusReader,
    showtime_id: uuid.UUID,
    body: ShowtimeUpdate,
    cleaning: int,
) -> Showtime:
    """Move a showtime or change its prices, until it starts.

    Moving it is refused (409) once booking holds or sold any of its seats (503 if unknown), as
    deleting it is: each booking keeps the start it was made for (docs/contracts.md), from
    which its cancellation cut-off, its tickets mail and its doors follow. New prices apply
    to bookings made after the change; a booking keeps what it was priced at.
    """
    showtime = await _found(session, Showtime, showtime_id, "Showtime")
    if showtime.starts_at <= datetime.now(UTC):
        raise Conflict("The showtime has already started", code="showtime_started")
    if body.starts_at is not None and body.starts_at.astimezone(UTC) != showtime.starts_at:
        taken = await statuses.fetch(showtime_id)
        if taken.held or taken.booked:
            raise Conflict("The showtime has bookings: it cannot be moved", code="has_bookings")
    hall = await repository.lock_auditorium(session, showtime.auditorium_id)
    assert hall is not None  # a showtime's auditorium is a foreign key
    if body.prices is not None:
        _check_prices(body.prices, hall)
        _set_prices(showtime, body.prices)
    showtime.currency = body.currency or showtime.currency
    if body.starts_at is not None:
        await _schedule(session, showtime, body.starts_at.astimezone(UTC), cleaning)
    await _commit(session, cache, "The auditorium is busy at that time", showtime)
    return showtime


async def delete_showtime(
    session: AsyncSession, cache: CatalogCache, statuses: SeatStatusReader, showtime_id: uuid.UUID
) -> None:
    """Cancel a showtime; refused (409) once booking holds or sold any of its seats (503 if unknown)."""
    showtime = await _found(session, Showtime, showtime_id, "Showtime")
    taken = await statuses.fetch(showtime_id)
    if taken.held or taken.booked:
        raise Conflict("The showtime has bookings", code="has_bookings")
    await repository.delete(session, showtime)
    await _commit(session, cache, "Showtime is in use")
