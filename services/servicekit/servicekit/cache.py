"""Caches: the service's Redis client and key naming, and the one process-local cache.

``LocalCache`` keeps values in cachetools' ``TLRUCache``, bounded by the bytes the caller
estimates (entry counts are a poor bound when one entry is a 100-seat showtime and the
next a 10,000-seat one), least recently used out first, each entry dropped at its own
expiry (swept on insert, so memory is not held by entries nobody can use any more).
On top of it: a value is fresh for ``fresh_for(value)`` seconds, then kept ``keep_stale``
seconds more for the next load to reuse (an unchanged showtime is not parsed again), and
concurrent misses of one key share a single load.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from cachetools import TLRUCache
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff

from servicekit.config import ServiceSettings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def create_redis(settings: ServiceSettings) -> Redis:
    """The service's one Redis client. A burst waits for a pooled connection instead of
    failing, every wait is bounded by ``redis_timeout_seconds``, and there is one quick
    retry (not redis-py's default of several with back-off), so an outage is a fast 503.
    With ``REDIS_SENTINELS`` set, the client asks the sentinels where the master is and
    follows it when they promote a replica."""
    if settings.redis_sentinels:
        return _through_sentinels(settings)
    pool = BlockingConnectionPool.from_url(settings.redis_url.get_secret_value(), **_pool_options(settings))
    return Redis.from_pool(pool)


def _pool_options(settings: ServiceSettings) -> dict[str, Any]:
    timeout = settings.redis_timeout_seconds
    return {
        "max_connections": settings.redis_max_connections,
        "timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "health_check_interval": 15,
        "retry": Retry(NoBackoff(), retries=1),
        "decode_responses": True,
    }


class _SentinelBlockingPool(SentinelConnectionPool, BlockingConnectionPool):
    """The master's pool as the sentinels name it, waiting for a free connection like the
    direct client's (redis-py's sentinel pool fails a burst beyond ``max_connections``)."""


class _SentinelRedis(Redis):
    """The master's client; closing it also closes its connections to the sentinels."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        assert isinstance(self.connection_pool, SentinelConnectionPool)
        for sentinel in self.connection_pool.sentinel_manager.sentinels:
            await sentinel.aclose()


def _through_sentinels(settings: ServiceSettings) -> Redis:
    url = urlsplit(settings.redis_url.get_secret_value())  # the master's password and db
    timeout = settings.redis_timeout_seconds
    secret = settings.redis_sentinel_password
    sentinel_options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if secret is not None:
        sentinel_options["password"] = secret.get_secret_value()
    sentinels = Sentinel(_addresses(settings.redis_sentinels), sentinel_kwargs=sentinel_options)
    return sentinels.master_for(
        settings.redis_sentinel_master,
        redis_class=_SentinelRedis,
        connection_pool_class=_SentinelBlockingPool,
        password=url.password,
        db=int(url.path.strip("/") or 0),
        **_pool_options(settings),
    )


def _addresses(listed: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as the sentinels' addresses."""
    found = []
    for item in filter(None, (part.strip() for part in listed.split(","))):
        host, _, port = item.rpartition(":")
        found.append((host, int(port)))
    return found


def key(settings: ServiceSettings, *parts: object) -> str:
    """A namespaced Redis key: ``{prefix}{part}:{part}...`` (tests use their own prefix)."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    size: int
    fresh_until: float


def _counts_one(_: object) -> int:
    return 1


def _forever(_: object) -> float:
    return math.inf


class LocalCache(Generic[K, V]):
    """At most ``max_bytes`` of values (as ``size_of`` estimates; each counts 1 by default),
    fresh for ``fresh_for(value)`` seconds (forever by default), kept ``keep_stale`` more."""

    def __init__(
        self,
        max_bytes: int,
        size_of: Callable[[V], int] = _counts_one,
        fresh_for: Callable[[V], float] = _forever,
        keep_stale: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size_of, self._fresh_for, self._clock = size_of, fresh_for, clock
        self._entries: TLRUCache[K, _Entry[V]] = TLRUCache(
            max_bytes, lambda _k, entry, _now: entry.fresh_until + keep_stale, clock, lambda e: e.size
        )
        self._loading: dict[K, asyncio.Future[V]] = {}

    @property
    def total_bytes(self) -> int:
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        """The fresh value (now the most recently used), or None."""
        try:
            entry = self._entries[key]  # not .get(): twice its cost on every hit
        except KeyError:
            return None
        return entry.value if entry.fresh_until > self._clock() else None

    def put(self, key: K, value: V) -> None:
        """Keep ``value``; one above the whole budget is not kept (nor what it replaces)."""
        entry = _Entry(value, self._size_of(value), self._clock() + self._fresh_for(value))
        if entry.size > self._entries.maxsize:
            self._entries.pop(key, None)
            return
        self._entries[key] = entry

    async def get_or_load(self, key: K, load: Callable[[K, V | None], Awaitable[V]]) -> tuple[V, bool]:
        """The fresh value, else ``load(key, the stale value or None)``, kept: one load for every
        concurrent caller. True when no load was started for this call (fresh, or joined)."""
        value = self.get(key)
        if value is not None:
            return value, True
        loading = self._loading.get(key)
        if loading is not None:
            return await asyncio.shield(loading), True
        loading = self._loading[key] = asyncio.ensure_future(self._load(key, load))
        loading.add_done_callback(lambda done: self._loaded(key, done))
        return await asyncio.shield(loading), False

    async def _load(self, key: K, load: Callable[[K, V | None], Awaitable[V]]) -> V:
        stale = self._entries.get(key)
        value = await load(key, stale.value if stale is not None else None)
        self.put(key, value)
        return value

    def _loaded(self, key: K, done: asyncio.Future[V]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]
        if not done.cancelled():
            done.exception()  # retrieved even when every caller was cancelled: no warning at exit
