"""Public catalog reads (no token): movies, theaters, showtimes, auditoriums, seat maps."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from movie_service import catalog
from movie_service.encoding import accepts_gzip
from movie_service.repository import MovieFilter, ShowtimeFilter
from movie_service.routes.deps import (
    CacheDep,
    LayoutsDep,
    Limit,
    Offset,
    StatusesDep,
    gateway_cache_until,
    json_text,
)
from movie_service.schema_rules import IsoDate
from movie_service.schemas import AuditoriumOut, MovieDetail, MoviePage, MovieSort, ShowtimePage, TheaterPage
from movie_service.seat_schemas import SeatMap
from servicekit.db import SessionDep
from servicekit.errors import Unprocessable, error_responses

router = APIRouter(tags=["catalog"])
MAX_RANGE_DAYS = 31
DAY = "One day (YYYY-MM-DD) in the theater's time zone; when given, date_from and date_to are ignored"
DATE_FROM = "First day (YYYY-MM-DD) of a range in the theater's time zone; alone, that one day"
DATE_TO = (
    "Last day (YYYY-MM-DD) of the range, inclusive: requires date_from (422 without it) "
    f"and is 0-{MAX_RANGE_DAYS} days after it (422 otherwise)"
)


@router.get("/movies", response_model=MoviePage, responses=error_responses(422))
async def list_movies(
    session: SessionDep,
    cache: CacheDep,
    genre: Annotated[str | None, Query(max_length=40, examples=["drama"])] = None,
    q: Annotated[str | None, Query(max_length=100, description="Words the title starts with")] = None,
    showing_on: Annotated[
        IsoDate | None,
        Query(alias="date", description="Has a showtime that day (YYYY-MM-DD, theater's time zone)"),
    ] = None,
    sort: MovieSort = "title",
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response:
    """List movies: paginated, filtered by genre, title words and showing date, sorted by title or release.

    422 for a `date` that is not YYYY-MM-DD, like any other value outside its documented range.
    """
    where = MovieFilter(genre=genre, query=q, showing_on=showing_on)
    return json_text(await catalog.movies_json(session, cache, where, (sort, limit, offset)))


@router.get("/movies/{movie_id}", response_model=MovieDetail, responses=error_responses(404, 422))
async def get_movie(movie_id: uuid.UUID, session: SessionDep, cache: CacheDep) -> Response:
    """One movie with its upcoming showtimes."""
    return json_text(await catalog.movie_json(session, cache, movie_id))


@router.get("/theaters", response_model=TheaterPage, responses=error_responses(422))
async def list_theaters(
    session: SessionDep,
    cache: CacheDep,
    city: Annotated[str | None, Query(max_length=80, examples=["Hanoi"])] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response:
    """List theaters with their auditoriums, optionally in one city."""
    return json_text(await catalog.theaters_json(session, cache, city, (limit, offset)))


@router.get("/auditoriums/{auditorium_id}", response_model=AuditoriumOut, responses=error_responses(404, 422))
async def get_auditorium(auditorium_id: uuid.UUID, session: SessionDep) -> AuditoriumOut:
    """An auditorium with its seat layout (rows, seats, tiers, aisles)."""
    return await catalog.auditorium_out(session, auditorium_id)


def _date_range(day: date | None, first: date | None, last: date | None) -> tuple[date | None, date | None]:
    first, last = (day, day) if day else (first, last or first)
    if first is None and last is not None:
        raise Unprocessable("date_from: required with date_to")
    if first and last and not 0 <= (last - first).days <= MAX_RANGE_DAYS:
        raise Unprocessable(f"date_to: must be 0-{MAX_RANGE_DAYS} days after date_from")
    return first, last


@router.get("/showtimes", response_model=ShowtimePage, responses=error_responses(422))
async def list_showtimes(
    session: SessionDep,
    cache: CacheDep,
    movie_id: uuid.UUID | None = None,
    theater_id: uuid.UUID | None = None,
    city: Annotated[str | None, Query(max_length=80)] = None,
    day: Annotated[IsoDate | None, Query(alias="date", description=DAY)] = None,
    date_from: Annotated[IsoDate | None, Query(description=DATE_FROM)] = None,
    date_to: Annotated[IsoDate | None, Query(description=DATE_TO)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> Response:
    """List showtimes by movie, theater, city and local date range (default: upcoming), soonest first.

    422 for a date that is not YYYY-MM-DD, a `date_to` without `date_from`, or a range that
    ends before it starts or more than 31 days after it.
    """
    first, last = _date_range(day, date_from, date_to)
    where = ShowtimeFilter(movie_id, theater_id, city, first, last)
    return json_text(await catalog.showtimes_json(session, cache, where, (limit, offset)))


@router.get(
    "/showtimes/{showtime_id}/seats",
    response_model=SeatMap,
    responses=error_responses(404, 422, 503),
)
async def seat_map(
    request: Request,
    showtime_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    layouts: LayoutsDep,
    statuses: StatusesDep,
) -> Response:
    """The seat map: every seat with id, row, number, tier, price and status (available|held|booked).

    Sent gzip-compressed to clients that accept it (`Accept-Encoding: gzip`).
    """
    wants_gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
    body, fresh_until, gzipped = await catalog.seat_map_body(
        session, cache, layouts, statuses, showtime_id, gzip=wants_gzip
    )
    headers = {**gateway_cache_until(fresh_until), "Vary": "Accept-Encoding"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return json_text(body, headers=headers)
