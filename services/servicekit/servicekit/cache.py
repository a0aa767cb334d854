"""Redis client creation and key naming."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from servicekit.config import ServiceSettings


def create_redis(settings: ServiceSettings) -> Redis:
    """A pooled client that fails fast: one quick retry, not redis-py's default of many
    with back-off, so an outage turns into a 503 within about a second."""
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=15,
        max_connections=200,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
    )


def key(settings: ServiceSettings, *parts: object) -> str:
    """A namespaced Redis key: ``{prefix}{part}:{part}...`` (tests use their own prefix)."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)
