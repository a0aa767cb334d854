"""Dependencies the routes share: the catalog cache, seat-map state, settings, page parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from movie_service.catalog_cache import CatalogCache
from movie_service.config import MovieSettings
from movie_service.seat_map import SeatMapLayouts
from movie_service.seat_status import SeatStatusReader
from servicekit.app import RuntimeDep


async def _cache(runtime: RuntimeDep) -> CatalogCache:
    cache: CatalogCache = runtime.state["catalog_cache"]
    return cache


async def _layouts(runtime: RuntimeDep) -> SeatMapLayouts:
    layouts: SeatMapLayouts = runtime.state["seat_map_layouts"]
    return layouts


async def _statuses(runtime: RuntimeDep) -> SeatStatusReader:
    reader: SeatStatusReader = runtime.state["seat_statuses"]
    return reader


async def _settings(request: Request) -> MovieSettings:
    settings: MovieSettings = request.app.state.settings
    return settings


CacheDep = Annotated[CatalogCache, Depends(_cache)]
LayoutsDep = Annotated[SeatMapLayouts, Depends(_layouts)]
StatusesDep = Annotated[SeatStatusReader, Depends(_statuses)]
SettingsDep = Annotated[MovieSettings, Depends(_settings)]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip")]


def json_text(body: str | bytes) -> Response:
    """A ready JSON body (from the cache) sent as it is."""
    return Response(content=body, media_type="application/json")
