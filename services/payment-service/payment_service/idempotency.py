"""Idempotency keys of ``POST /process``: PostgreSQL is the guard, Redis the fast replay.

A key belongs to one user: the record's primary key is ``(user_id, key)``, so
another user's identical key is a different record. A record is ``in_flight``
while its request runs (lease ``locked_until``) and ``completed`` with the
answer to replay once a payment outcome is known. Answers where nothing was
charged (booking not payable, booking-service or the provider unavailable) are
not kept: the key is released so the client may retry with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payment_service import repository
from payment_service.config import PaymentSettings
from payment_service.leases import retry_after
from payment_service.models import IdempotencyRecord
from payment_service.schemas import PaymentRequest
from servicekit.cache import key as cache_key
from servicekit.errors import Conflict, Unprocessable

logger = logging.getLogger("payment_service.idempotency")
IN_FLIGHT, COMPLETED = "in_flight", "completed"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a key: a fresh start, an answer to replay, or a payment to resume.

    ``booking_known``: a fresh start whose claim found the booking's ``booking.created``
    (the usual claim asks in the same statement; a key claimed again after its record
    expired does not ask, and the booking is then read from booking-service).
    """

    replay: StoredResponse | None = None
    resume_payment_id: uuid.UUID | None = None
    booking_known: bool = False


class IdempotencyStore:
    def __init__(
        self,
        settings: PaymentSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        autocommit: AsyncEngine,
    ) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._redis = redis
        self._autocommit = autocommit

    def fingerprint(self, request: PaymentRequest) -> str:
        """A keyed hash of the request body (keyed: the body holds a card number)."""
        canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True).encode()
        secret = self._settings.internal_token.get_secret_value().encode()
        return hmac.new(secret, canonical, hashlib.sha256).hexdigest()

    async def cached(self, user_id: uuid.UUID, key: str, fingerprint: str) -> StoredResponse | None:
        """A completed answer from Redis (None on a miss or when Redis is unavailable)."""
        try:
            raw = await self._redis.get(self._redis_key(user_id, key))
        except RedisError as exc:
            logger.warning("idempotency cache unavailable: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        entry = json.loads(raw)
        _check_same_request(entry["fingerprint"], fingerprint)
        return StoredResponse(entry["status"], entry["body"])

    async def claim(self, user_id: uuid.UUID, key: str, fingerprint: str, booking_id: uuid.UUID) -> Claim:
        """Take the key for this request (409 while another request holds it, 422 on another body)."""
        now = datetime.now(UTC)
        values = {"user_id": user_id, "key": key, **self._fresh_values(fingerprint, now)}
        async with self._autocommit.connect() as connection:  # the usual case: one round trip
            claimed, known = await repository.claim_key_knowing_booking(connection, values, booking_id)
            if claimed:
                return Claim(booking_known=known)
        async with self._sessionmaker() as session, session.begin():
            record = await repository.get_idempotency_record(session, user_id, key)
            return self._reclaim(record, fingerprint, now)

    def _reclaim(self, record: IdempotencyRecord | None, fingerprint: str, now: datetime) -> Claim:
        if record is None:  # released by its request a moment ago
            raise Conflict(
                "A request with this Idempotency-Key just finished; retry",
                code="idempotency_busy",
                headers={"Retry-After": "1"},
            )
        if record.expires_at <= now:  # kept past its time and not yet purged: starts afresh
            for name, value in self._fresh_values(fingerprint, now).items():
                setattr(record, name, value)
            return Claim()
        _check_same_request(record.fingerprint, fingerprint)
        if record.state == COMPLETED:
            assert record.response_status is not None and record.response_body is not None
            return Claim(replay=StoredResponse(record.response_status, record.response_body))
        if record.locked_until > now:  # by the end of its lease it has finished or may be resumed
            raise Conflict(
                "A request with this Idempotency-Key is still in progress",
                code="idempotency_busy",
                headers=retry_after(record.locked_until),
            )
        record.locked_until = now + timedelta(seconds=self._settings.idempotency_lock_seconds)
        return Claim(resume_payment_id=record.payment_id)  # its request died: carry on from its payment

    def _fresh_values(self, fingerprint: str, now: datetime) -> dict[str, Any]:
        return {
            "fingerprint": fingerprint,
            "state": IN_FLIGHT,
            "payment_id": None,
            "response_status": None,
            "response_body": None,
            "locked_until": now + timedelta(seconds=self._settings.idempotency_lock_seconds),
            "expires_at": now + timedelta(seconds=self._settings.idempotency_ttl_seconds),
        }

    async def complete(
        self, session: AsyncSession, user_id: uuid.UUID, key: str, response: StoredResponse
    ) -> None:
        """Store the answer, inside the transaction that stores the payment's outcome."""
        await repository.complete_key(session, user_id, key, response.status, response.body)

    async def release(self, user_id: uuid.UUID, key: str) -> None:
        """Forget a key whose request charged nothing, so the same key may be retried."""
        async with self._sessionmaker() as session, session.begin():
            await repository.delete_idempotency_record(session, user_id, key)

    async def release_payment(
        self, session: AsyncSession, user_id: uuid.UUID, key: str, payment_id: uuid.UUID
    ) -> None:
        """Release a key still held for this payment (not a key another request took since)."""
        await repository.delete_idempotency_record(session, user_id, key, payment_id=payment_id)

    async def remember(
        self, user_id: uuid.UUID, key: str, fingerprint: str, response: StoredResponse
    ) -> None:
        """Copy a completed answer to Redis for fast replays (best effort: PostgreSQL has it)."""
        entry = {"fingerprint": fingerprint, "status": response.status, "body": response.body}
        try:
            await self._redis.set(
                self._redis_key(user_id, key), json.dumps(entry), ex=self._settings.idempotency_ttl_seconds
            )
        except RedisError as exc:
            logger.warning("idempotency cache write failed: %s", type(exc).__name__)

    def _redis_key(self, user_id: uuid.UUID, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return cache_key(self._settings, "payment", "idempotency", user_id, digest)


def _check_same_request(stored: str, given: str) -> None:
    if not hmac.compare_digest(stored, given):
        raise Unprocessable(
            "This Idempotency-Key was used with a different request body", code="idempotency_key_reused"
        )
