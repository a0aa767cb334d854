"""Throttling of failed logins per account and per client address (Redis)."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from auth_service.config import AuthSettings
from servicekit.cache import key
from servicekit.errors import TooManyRequests


def login_subject(user_id: uuid.UUID | None, identifier: str) -> str:
    """What a failed login counts against: the account, whichever identifier named it.

    An identifier that names no account counts on its own (lower-cased), so an unknown
    name is locked after as many failures as a real one and a 429 tells nothing.
    """
    return f"user:{user_id}" if user_id else f"id:{identifier.lower()}"


class LoginThrottle:
    def __init__(self, redis: Redis, settings: AuthSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _keys(self, subject: str, client_ip: str) -> list[str]:
        return [
            key(self.settings, "login_fail", subject),
            key(self.settings, "login_fail", "ip", client_ip),
        ]

    async def check(self, subject: str, client_ip: str) -> None:
        """429 with Retry-After once an account (or unknown name) or address has failed too often."""
        subject_key, ip_key = self._keys(subject, client_ip)
        counts = await self.redis.mget(subject_key, ip_key)
        per_subject, per_ip = self.settings.login_max_failures, self.settings.login_max_failures_per_ip
        if int(counts[0] or 0) >= per_subject or int(counts[1] or 0) >= per_ip:
            ttl = max(await self.redis.ttl(subject_key), await self.redis.ttl(ip_key), 1)
            raise TooManyRequests("Too many failed login attempts; try again later", retry_after=ttl)

    async def record_failure(self, subject: str, client_ip: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for k in self._keys(subject, client_ip):
                pipe.incr(k)
                pipe.expire(k, self.settings.login_window_seconds, nx=True)
            await pipe.execute()

    async def reset(self, subject: str) -> None:
        await self.redis.delete(self._keys(subject, "-")[0])
