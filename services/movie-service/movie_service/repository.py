"""Every SQL statement of movie-service."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Date,
    Row,
    Select,
    and_,
    cast,
    exists,
    false,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from movie_service.models import Auditorium, Movie, SeedRun, Showtime, Theater
from servicekit.errors import Conflict

T = TypeVar("T")

# UTC offsets lie within -12 h .. +14 h: a local date is inside this window of UTC instants.
_MAX_OFFSET = timedelta(hours=14)
# A film lasts at most 600 min and the cleaning gap at most 240 min.
_LONGEST_SLOT = timedelta(minutes=840)
_MOVIE_ORDER = {
    "title": (func.lower(Movie.title), Movie.id),
    "-title": (func.lower(Movie.title).desc(), Movie.id.desc()),
    "release_date": (Movie.release_date.asc().nulls_last(), Movie.id),
    "-release_date": (Movie.release_date.desc().nulls_last(), Movie.id.desc()),
}


@dataclass(frozen=True)
class MovieFilter:
    genre: str | None = None
    query: str | None = None
    showing_on: date | None = None


@dataclass(frozen=True)
class ShowtimeFilter:
    movie_id: uuid.UUID | None = None
    theater_id: uuid.UUID | None = None
    city: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    upcoming_after: datetime | None = None


def _on_local_dates(first: date, last: date) -> ColumnElement[bool]:
    """Showtimes whose start, in their theater's time zone, falls on first..last (needs Theater joined)."""
    low = datetime.combine(first, time.min, UTC) - _MAX_OFFSET
    high = datetime.combine(last, time.min, UTC) + timedelta(days=1) + _MAX_OFFSET
    local_day = cast(func.timezone(Theater.time_zone, Showtime.starts_at), Date)
    return and_(Showtime.starts_at >= low, Showtime.starts_at < high, local_day.between(first, last))


def _title_query(text: str) -> ColumnElement[bool]:
    """Every word of ``text`` as a word prefix of the title (GIN index on the title's tsvector)."""
    words = re.findall(r"\w+", text.lower())
    if not words:
        return false()
    tsquery = func.to_tsquery(literal_column("'simple'"), " & ".join(f"{w}:*" for w in words))
    return func.to_tsvector(literal_column("'simple'"), Movie.title).op("@@")(tsquery)


def _movie_conditions(where: MovieFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.genre:
        conditions.append(Movie.genres.contains([where.genre.strip().lower()]))
    if where.query:
        conditions.append(_title_query(where.query))
    if where.showing_on:
        on_day = _on_local_dates(where.showing_on, where.showing_on)
        showing = select(Showtime.id).join(Theater, Theater.id == Showtime.theater_id)
        conditions.append(exists(showing.where(Showtime.movie_id == Movie.id, on_day)))
    return conditions


async def list_movies(
    session: AsyncSession, where: MovieFilter, sort: str, limit: int, offset: int
) -> tuple[Sequence[Movie], int]:
    """One page of movies and the number matching."""
    conditions = _movie_conditions(where)
    total = await session.scalar(select(func.count()).select_from(Movie).where(*conditions))
    stmt = select(Movie).where(*conditions).order_by(*_MOVIE_ORDER[sort]).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all(), int(total or 0)


ShowtimeRow = Row[Showtime, str, str, str, str, str]


def _showtime_rows() -> Select[Showtime, str, str, str, str, str]:
    return (
        select(Showtime, Movie.title, Theater.name, Theater.city, Theater.time_zone, Auditorium.name)
        .join(Movie, Movie.id == Showtime.movie_id)
        .join(Theater, Theater.id == Showtime.theater_id)
        .join(Auditorium, Auditorium.id == Showtime.auditorium_id)
    )


def _showtime_conditions(where: ShowtimeFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if where.movie_id:
        conditions.append(Showtime.movie_id == where.movie_id)
    if where.theater_id:
        conditions.append(Showtime.theater_id == where.theater_id)
    if where.city:
        conditions.append(func.lower(Theater.city) == where.city.strip().lower())
    if where.date_from and where.date_to:
        conditions.append(_on_local_dates(where.date_from, where.date_to))
    if where.upcoming_after:
        conditions.append(Showtime.starts_at > where.upcoming_after)
    return conditions


async def list_showtimes(
    session: AsyncSession, where: ShowtimeFilter, limit: int, offset: int
) -> tuple[Sequence[ShowtimeRow], int]:
    """One page of showtimes (with movie, theater and auditorium names), soonest first."""
    conditions = _showtime_conditions(where)
    count = select(func.count()).select_from(Showtime).join(Theater, Theater.id == Showtime.theater_id)
    total = await session.scalar(count.where(*conditions))
    stmt = _showtime_rows().where(*conditions).order_by(Showtime.starts_at, Showtime.id)
    rows = (await session.execute(stmt.limit(limit).offset(offset))).all()
    return rows, int(total or 0)


async def showtime_with_context(session: AsyncSession, showtime_id: uuid.UUID) -> Row[Any] | None:
    """A showtime with its movie title, theater, auditorium name, the auditorium's layout and the
    theater's address."""
    stmt = _showtime_rows().add_columns(Auditorium.layout, Theater.address).where(Showtime.id == showtime_id)
    return (await session.execute(stmt)).first()


async def list_theaters(
    session: AsyncSession, city: str | None, limit: int, offset: int
) -> tuple[Sequence[Theater], int]:
    conditions = [func.lower(Theater.city) == city.strip().lower()] if city else []
    total = await session.scalar(select(func.count()).select_from(Theater).where(*conditions))
    order = (func.lower(Theater.city), func.lower(Theater.name), Theater.id)
    stmt = select(Theater).where(*conditions).order_by(*order).limit(limit).offset(offset)
    return (await session.scalars(stmt)).all(), int(total or 0)


async def auditoriums_of(session: AsyncSession, theater_ids: Sequence[uuid.UUID]) -> Sequence[Auditorium]:
    stmt = select(Auditorium).where(Auditorium.theater_id.in_(theater_ids)).order_by(Auditorium.name)
    return (await session.scalars(stmt)).all() if theater_ids else []


async def get(session: AsyncSession, model: type[T], entity_id: uuid.UUID) -> T | None:
    return await session.get(model, entity_id)


async def lock_auditorium(session: AsyncSession, auditorium_id: uuid.UUID) -> Auditorium | None:
    """The auditorium, row-locked: showtime writes for one auditorium run one at a time."""
    stmt = select(Auditorium).where(Auditorium.id == auditorium_id).with_for_update()
    return (await session.scalars(stmt)).first()


async def overlapping_showtime(
    session: AsyncSession, auditorium_id: uuid.UUID, span: tuple[datetime, datetime], ignore: uuid.UUID | None
) -> Showtime | None:
    """A showtime of the auditorium whose [start, end + cleaning) meets ``span``."""
    starts, until = span
    stmt = select(Showtime).where(
        Showtime.auditorium_id == auditorium_id,
        Showtime.starts_at > starts - _LONGEST_SLOT,
        Showtime.starts_at < until,
        Showtime.turnaround_ends_at > starts,
    )
    if ignore is not None:
        stmt = stmt.where(Showtime.id != ignore)
    return (await session.scalars(stmt.limit(1))).first()


async def has_future_showtimes(
    session: AsyncSession, column: InstrumentedAttribute[uuid.UUID], value: uuid.UUID, now: datetime
) -> bool:
    """Whether a showtime with ``column == value`` has not ended yet."""
    stmt = select(exists().where(column == value, Showtime.ends_at > now))
    return bool(await session.scalar(stmt))


async def add(session: AsyncSession, entity: T) -> T:
    session.add(entity)
    await session.flush()
    return entity


async def delete(session: AsyncSession, entity: object) -> None:
    await session.delete(entity)
    await session.flush()


async def claim_seed(session: AsyncSession, name: str) -> bool:
    """Record that the seed ``name`` runs now; False when it already ran (or runs in another replica)."""
    stmt = insert(SeedRun).values(name=name).on_conflict_do_nothing().returning(SeedRun.name)
    return (await session.scalar(stmt)) is not None


async def add_or_conflict(session: AsyncSession, entity: T, conflict: str) -> T:
    """Insert ``entity``; a unique violation becomes a 409 (the transaction stays usable)."""
    try:
        async with session.begin_nested():
            session.add(entity)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc
    return entity
