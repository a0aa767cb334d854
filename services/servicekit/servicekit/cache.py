"""Redis client creation and key naming."""

from __future__ import annotations

from redis.asyncio import Redis

from servicekit.config import ServiceSettings


def create_redis(settings: ServiceSettings) -> Redis:
    return Redis.from_url(
        settings.redis_url.get_secret_value(),
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=15,
        max_connections=200,
    )


def key(settings: ServiceSettings, *parts: object) -> str:
    """A namespaced Redis key: ``{prefix}{part}:{part}...`` (tests use their own prefix)."""
    return settings.redis_prefix + ":".join(str(p) for p in parts)
