"""Dependencies the routes share: the catalog cache, seat-map state, settings, page parameters."""

from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import Depends, Query, Request, Response

from movie_service.catalog_cache import CatalogCache
from movie_service.config import MovieSettings
from movie_service.seat_map import SeatMapLayouts
from movie_service.seat_status import SeatStatusReader
from servicekit.components import Component

CATALOG_CACHE: Component[CatalogCache] = Component("catalog cache")
SEAT_MAP_LAYOUTS: Component[SeatMapLayouts] = Component("seat-map layouts")
SEAT_STATUSES: Component[SeatStatusReader] = Component("seat statuses")


async def _settings(request: Request) -> MovieSettings:
    settings: MovieSettings = request.app.state.settings
    return settings


CacheDep = Annotated[CatalogCache, Depends(CATALOG_CACHE)]
LayoutsDep = Annotated[SeatMapLayouts, Depends(SEAT_MAP_LAYOUTS)]
StatusesDep = Annotated[SeatStatusReader, Depends(SEAT_STATUSES)]
SettingsDep = Annotated[MovieSettings, Depends(_settings)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")]


def json_text(body: str | bytes, headers: dict[str, str] | None = None) -> Response:
    """A ready JSON body (from the cache) sent as it is."""
    return Response(content=body, media_type="application/json", headers=headers)


def gateway_cache_until(fresh_until: float, now: float | None = None) -> dict[str, str]:
    """``X-Accel-Expires`` letting the gateway keep an answer no later than ``fresh_until``.

    NGINX counts in whole seconds and still serves an entry during its last second
    (``@T`` is served while its clock reads T), so the answer is marked ``@(S - 1)``
    where S is the last whole second not after ``fresh_until``; when that has passed
    already it is marked not to be kept at all (``0``).
    """
    now = time.time() if now is None else now
    until = math.floor(fresh_until)
    return {"X-Accel-Expires": f"@{until - 1}" if until > now else "0"}
