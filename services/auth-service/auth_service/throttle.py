"""Throttling of failed logins per account identifier and per client address (Redis)."""

from __future__ import annotations

from redis.asyncio import Redis

from auth_service.config import AuthSettings
from servicekit.cache import key
from servicekit.errors import TooManyRequests


class LoginThrottle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _keys(self, identifier: str, client_ip: str) -> list[str]:
        return [
            key(self.settings, "login_fail", "id", identifier.lower()),
            key(self.settings, "login_fail", "ip", client_ip),
        ]

    async def check(self, identifier: str, client_ip: str) -> None:
        """429 with Retry-After once an identifier or address has failed too often."""
        id_key, ip_key = self._keys(identifier, client_ip)
        counts = await self.redis.mget(id_key, ip_key)
        per_id, per_ip = self.settings.login_max_failures, self.settings.login_max_failures_per_ip
        if int(counts[0] or 0) >= per_id or int(counts[1] or 0) >= per_ip:
            ttl = max(await self.redis.ttl(id_key), await self.redis.ttl(ip_key), 1)
            raise TooManyRequests("Too many failed login attempts; try again later", retry_after=ttl)

    async def record_failure(self, identifier: str, client_ip: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for k in self._keys(identifier, client_ip):
                pipe.incr(k)
                pipe.expire(k, self.settings.login_window_seconds, nx=True)
            await pipe.execute()

    async def reset(self, identifier: str) -> None:
        await self.redis.delete(self._keys(identifier, "-")[0])
