"""Admin programme writes (role `admin`): movies, theaters, auditoriums, showtimes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from movie_service import catalog, programme
from movie_service.routes.deps import CacheDep, SettingsDep, StatusesDep
from movie_service.schemas import (
    AuditoriumCreate,
    AuditoriumOut,
    AuditoriumUpdate,
    MovieCreate,
    MovieOut,
    MovieUpdate,
    ShowtimeOut,
    TheaterCreate,
    TheaterOut,
    TheaterUpdate,
)
from movie_service.seat_schemas import ShowtimeCreate, ShowtimeUpdate
from servicekit.db import SessionDep
from servicekit.errors import error_responses
from servicekit.security import AdminUser

router = APIRouter(tags=["admin"])
CREATED = status.HTTP_201_CREATED
NO_CONTENT = status.HTTP_204_NO_CONTENT


def _deleted() -> Response:
    return Response(status_code=NO_CONTENT)


@router.post(
    "/movies", status_code=CREATED, response_model=MovieOut, responses=error_responses(401, 403, 422)
)
async def create_movie(body: MovieCreate, _: AdminUser, session: SessionDep, cache: CacheDep) -> MovieOut:
    """Add a movie to the catalog (admin)."""
    return MovieOut.model_validate(await programme.create_movie(session, cache, body))


@router.patch(
    "/movies/{movie_id}", response_model=MovieOut, responses=error_responses(401, 403, 404, 409, 422)
)
async def update_movie(
    movie_id: uuid.UUID, body: MovieUpdate, _: AdminUser, session: SessionDep, cache: CacheDep
) -> MovieOut:
    """Change a movie's fields (admin); the duration is fixed while showtimes are upcoming."""
    return MovieOut.model_validate(await programme.update_movie(session, cache, movie_id, body))


@router.delete(
    "/movies/{movie_id}", status_code=NO_CONTENT, responses=error_responses(401, 403, 404, 409, 422)
)
async def delete_movie(movie_id: uuid.UUID, _: AdminUser, session: SessionDep, cache: CacheDep) -> Response:
    """Remove a movie (admin); 409 while it has upcoming showtimes."""
    await programme.delete_movie(session, cache, movie_id)
    return _deleted()


@router.post(
    "/theaters", status_code=CREATED, response_model=TheaterOut, responses=error_responses(401, 403, 409, 422)
)
async def create_theater(
    body: TheaterCreate, _: AdminUser, session: SessionDep, cache: CacheDep
) -> TheaterOut:
    """Add a theater (admin); its name is unique in its city."""
    theater = await programme.create_theater(session, cache, body)
    return await catalog.theater_out(session, theater)


@router.patch(
    "/theaters/{theater_id}", response_model=TheaterOut, responses=error_responses(401, 403, 404, 409, 422)
)
async def update_theater(
    theater_id: uuid.UUID, body: TheaterUpdate, _: AdminUser, session: SessionDep, cache: CacheDep
) -> TheaterOut:
    """Change a theater's name, city, address or time zone (admin)."""
    theater = await programme.update_theater(session, cache, theater_id, body)
    return await catalog.theater_out(session, theater)


@router.delete(
    "/theaters/{theater_id}", status_code=NO_CONTENT, responses=error_responses(401, 403, 404, 409, 422)
)
async def delete_theater(
    theater_id: uuid.UUID, _: AdminUser, session: SessionDep, cache: CacheDep
) -> Response:
    """Remove a theater and its auditoriums (admin); 409 while it has upcoming showtimes."""
    await programme.delete_theater(session, cache, theater_id)
    return _deleted()


@router.post(
    "/auditoriums",
    status_code=CREATED,
    response_model=AuditoriumOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def create_auditorium(
    body: AuditoriumCreate, _: AdminUser, session: SessionDep, cache: CacheDep
) -> AuditoriumOut:
    """Add an auditorium with its seat layout to a theater (admin)."""
    return AuditoriumOut.model_validate(await programme.create_auditorium(session, cache, body))


@router.patch(
    "/auditoriums/{auditorium_id}",
    response_model=AuditoriumOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_auditorium(
    auditorium_id: uuid.UUID, body: AuditoriumUpdate, _: AdminUser, session: SessionDep, cache: CacheDep
) -> AuditoriumOut:
    """Rename an auditorium or change its layout (admin); the layout is fixed while showtimes are upcoming."""
    return AuditoriumOut.model_validate(
        await programme.update_auditorium(session, cache, auditorium_id, body)
    )


@router.delete(
    "/auditoriums/{auditorium_id}", status_code=NO_CONTENT, responses=error_responses(401, 403, 404, 409, 422)
)
async def delete_auditorium(
    auditorium_id: uuid.UUID, _: AdminUser, session: SessionDep, cache: CacheDep
) -> Response:
    """Remove an auditorium (admin); 409 while it has upcoming showtimes."""
    await programme.delete_auditorium(session, cache, auditorium_id)
    return _deleted()


@router.post(
    "/showtimes",
    status_code=CREATED,
    response_model=ShowtimeOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def create_showtime(
    body: ShowtimeCreate, _: AdminUser, session: SessionDep, cache: CacheDep, settings: SettingsDep
) -> ShowtimeOut:
    """Schedule a movie in an auditorium (admin): 422 in the past, 409 overlapping another showtime."""
    showtime = await programme.create_showtime(session, cache, body, settings.cleaning_minutes)
    return await catalog.showtime_by_id(session, showtime.id)


@router.patch(
    "/showtimes/{showtime_id}",
    response_model=ShowtimeOut,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def update_showtime(
    showtime_id: uuid.UUID,
    body: ShowtimeUpdate,
    _: AdminUser,
    session: SessionDep,
    cache: CacheDep,
    statuses: StatusesDep,
    settings: SettingsDep,
) -> ShowtimeOut:
    """Move a showtime or change its prices (admin), until it starts; moving it is a 409 once
    it has bookings, a 503 when booking cannot tell."""
    await programme.update_showtime(session, cache, statuses, showtime_id, body, settings.cleaning_minutes)
    return await catalog.showtime_by_id(session, showtime_id)


@router.delete(
    "/showtimes/{showtime_id}",
    status_code=NO_CONTENT,
    responses=error_responses(401, 403, 404, 409, 422, 503),
)
async def delete_showtime(
    showtime_id: uuid.UUID, _: AdminUser, session: SessionDep, cache: CacheDep, statuses: StatusesDep
) -> Response:
    """Cancel a showtime (admin); 409 once it has bookings, 503 when booking cannot tell."""
    await programme.delete_showtime(session, cache, statuses, showtime_id)
    return _deleted()
