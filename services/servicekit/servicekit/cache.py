"""Redis client creation and key naming."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from servicekit.config import ServiceSettings


def create_redis(settings: ServiceSettings) -> Redis:
    """The service's one Redis client. A burst waits for a pooled connection instead of
    failing, every wait is bounded by ``redis_timeout_seconds``, and there is one quick
    retry (not redis-py's default of several with back-off), so an outage is a fast 503."""
    timeout = settings.redis_timeout_seconds
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_max_connections,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=15,
        retry=Retry(NoBackoff(), retries=1),
        decode_responses=True,
    )
    return Redis.from_pool(pool)


def key(settings: ServiceSettings, *parts: object) -> str:
    """A namespaced Redis key: ``{prefix}{part}:{part}...`` (tests use their own prefix)."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)
