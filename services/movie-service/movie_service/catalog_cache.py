"""Catalog reads cached in Redis as ready JSON, keyed by a version that every admin write bumps.

The version is bumped after the write commits, so a reader never stores pre-write data under the
new version; entries under old versions simply expire. When Redis is down, reads go to PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from servicekit.cache import key
from servicekit.config import ServiceSettings

logger = logging.getLogger("movie_service.cache")


class CatalogCache:
    def __init__(self, redis: Redis, settings: ServiceSettings) -> None:
        self._redis = redis
        self.settings = settings
        self._version_key = key(settings, "movie", "catalog-version")

    async def version(self) -> str | None:
        """The current catalog version; None when Redis cannot be reached."""
        try:
            value = await self._redis.get(self._version_key)
        except RedisError:
            logger.warning("redis unavailable: catalog read without cache")
            return None
        return str(value or "0")

    async def bump(self) -> None:
        """Invalidate every cached catalog read (call after the write committed)."""
        try:
            await self._redis.incr(self._version_key)
        except RedisError:
            logger.warning("redis unavailable: catalog version not bumped, entries expire by TTL")

    async def cached(
        self, name: str, params: dict[str, object], ttl: int, compute: Callable[[], Awaitable[str]]
    ) -> str:
        """The JSON for ``name`` + ``params`` from Redis, else ``compute()`` stored for ``ttl`` s."""
        version = await self.version()
        if version is None:
            return await compute()
        digest = hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
        entry = key(self.settings, "movie", f"v{version}", name, digest[:32])
        try:
            hit = await self._redis.get(entry)
        except RedisError:
            return await compute()
        if hit is not None:
            return str(hit)
        body = await compute()
        try:
            await self._redis.set(entry, body, ex=ttl)
        except RedisError:
            logger.warning("redis unavailable: catalog entry not stored")
        return body
