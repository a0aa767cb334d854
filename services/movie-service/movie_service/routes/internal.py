"""Service-to-service endpoints (not routed by the gateway; `X-Internal-Token` required, else 404)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from movie_service import catalog
from movie_service.routes.deps import CacheDep, json_text
from movie_service.seat_schemas import InternalShowtime
from servicekit.db import SessionDep
from servicekit.errors import error_responses
from servicekit.security import InternalCaller

router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[InternalCaller])


@router.get("/showtimes/{showtime_id}", response_model=InternalShowtime, responses=error_responses(404, 422))
async def internal_showtime(showtime_id: uuid.UUID, session: SessionDep, cache: CacheDep) -> Response:
    """Booking's look-up: a showtime with every seat and its price (cached until an admin write)."""
    return json_text(await catalog.internal_showtime_json(session, cache, showtime_id))
