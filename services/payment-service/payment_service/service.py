"""Paying a booking: idempotency, the provider call with retries, the outcome with its event.

One ``POST /process`` runs in steps, each its own transaction, because a charge
at the provider sits between them and must never be repeated:

1. claim the ``Idempotency-Key`` (committed: concurrent requests see it at once);
   the same statement tells whether the booking's ``booking.created`` has arrived;
2. check the booking is payable, insert a ``pending`` payment linked to the key
   (committed: the partial unique index refuses a second live payment of the
   booking). A booking ``booking.created`` announced is read here, in the same
   transaction; only one whose event has not arrived yet is asked of booking-service
   (``GET /internal/bookings/{id}``), and so is a booking already paid or being paid
   (whether booking confirmed it tells ``booking_not_pending`` from ``booking_already_paid``);
3. charge the provider with the payment's own key ``payment:{id}``, retrying
   transient failures with back-off (a repeated key is never charged twice);
4. in one transaction: the payment's outcome, its event in the outbox, the
   answer stored under the key. A booking cancelled meanwhile is refunded here.

A crash between 2 and 4 leaves the key ``in_flight`` and the payment ``pending``.
The payment is resolved, never charged anew (its booking may have ended since), by
asking the provider what became of its key (``resolve_payment``): charged or
declined, it is finished here (``finish_payment``); nothing charged, the provider
voids the key and the payment is abandoned (``abandon_payment``). The reconciler
(``reconciler.py``) does that once the lease lapses; so does a retry with the same
key, which then starts a new payment if nothing was charged and the booking is
still payable.

A request that fails before anything reached the provider (a booking not payable,
a database error) releases its key, so the same key may be retried at once; one
that fails while the outcome at the provider is unknown keeps it until the lease
ends, for the reconciler or a retry to resolve.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from payment_service import repository
from payment_service.bookings import BookingGateway, check_payable, known_booking_view
from payment_service.cards import card_brand, card_last4
from payment_service.config import PaymentSettings
from payment_service.events import payment_completed, publish_payment_completed, publish_payment_failed
from payment_service.idempotency import Claim, IdempotencyStore, StoredResponse
from payment_service.leases import pending_payment_retry_after
from payment_service.metrics import IDEMPOTENT_REPLAYS, PAYMENTS
from payment_service.models import CancelledBooking, Payment, PaymentStatus
from payment_service.providers import (
    ABANDONED,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderUnavailable,
)
from payment_service.refunds import late_payment_refund_reason, refund_payment
from payment_service.schemas import BookingView, PaymentOut, PaymentRequest
from servicekit.components import Component
from servicekit.errors import Conflict, ServiceUnavailable, error_body
from servicekit.security import Principal

logger = logging.getLogger("payment_service")


@dataclass(frozen=True)
class Payments:
    """What paying needs, built once in lifespan."""

    settings: PaymentSettings
    sessionmaker: async_sessionmaker[AsyncSession]
    provider: PaymentProvider
    bookings: BookingGateway
    idempotency: IdempotencyStore


PAYING: Component[Payments] = Component("payments")


@dataclass(frozen=True)
class ProcessResult:
    response: StoredResponse
    replayed: bool


async def process_payment(ctx: Payments, user: Principal, request: PaymentRequest, key: str) -> ProcessResult:
    """Pay ``request.booking_id`` once per (user, key); a repeated key replays the first answer."""
    fingerprint = ctx.idempotency.fingerprint(request)
    stored = await ctx.idempotency.cached(user.user_id, key, fingerprint)
    if stored is None:
        claim = await ctx.idempotency.claim(user.user_id, key, fingerprint, request.booking_id)
        if claim.replay is None:
            return await _pay_claimed(ctx, user, request, (key, fingerprint), claim)
        stored = claim.replay
        await ctx.idempotency.remember(user.user_id, key, fingerprint, stored)  # Redis had lost it
    IDEMPOTENT_REPLAYS.inc()
    return ProcessResult(stored, replayed=True)


async def _pay_claimed(
    ctx: Payments,
    user: Principal,
    request: PaymentRequest,
    key_and_fingerprint: tuple[str, str],
    claim: Claim,
) -> ProcessResult:
    key, fingerprint = key_and_fingerprint
    attempt = _Attempt()
    try:
        response = await _pay(ctx, user, request, key, claim, attempt)
    except BaseException:
        if not attempt.at_provider:  # nothing was charged: the key may be used again at once
            await _release(ctx, user.user_id, key)
        raise
    await ctx.idempotency.remember(user.user_id, key, fingerprint, response)
    return ProcessResult(response, replayed=False)


@dataclass
class _Attempt:
    """Whether the request's payment is at the provider with an outcome not known here."""

    at_provider: bool = False


async def _release(ctx: Payments, user_id: uuid.UUID, key: str) -> None:
    try:
        await ctx.idempotency.release(user_id, key)
    except Exception as exc:  # the database is away too: the key's lease ends by itself
        logger.warning("idempotency key not released: %s", type(exc).__name__)


async def _pay(
    ctx: Payments, user: Principal, request: PaymentRequest, key: str, claim: Claim, attempt: _Attempt
) -> StoredResponse:
    if claim.resume_payment_id is not None:
        attempt.at_provider = True
        resolved = await _resolve_earlier_attempt(ctx, claim.resume_payment_id)
        attempt.at_provider = False
        if resolved is not None:
            return resolved
    payment = await _start_payment(ctx, user, request, key, claim.booking_known)
    attempt.at_provider = True
    try:
        result = await _charge(ctx, payment, request.card_number)
    except ProviderUnavailable as exc:
        await _give_up(ctx, payment)
        attempt.at_provider = False
        raise ServiceUnavailable(
            "The payment provider is unavailable; nothing was charged, retry later",
            code="provider_unavailable",
        ) from exc
    if result.abandoned:  # the reconciler voided the key while this request was too slow
        await abandon_payment(ctx, payment)
        attempt.at_provider = False
        raise ServiceUnavailable(
            "The payment took too long and was abandoned; nothing was charged, retry",
            code="payment_abandoned",
        )
    return await finish_payment(ctx, user.user_id, key, payment, result)


async def _resolve_earlier_attempt(ctx: Payments, payment_id: uuid.UUID | None) -> StoredResponse | None:
    """The key's earlier request died with its payment pending: its outcome at the provider,
    finished here, is this request's answer; None when nothing was charged (the attempt is
    abandoned, its charge voided) or the payment was resolved meanwhile without a charge."""
    if payment_id is None:
        return None
    async with ctx.sessionmaker() as session:
        payment = await repository.get_payment(session, payment_id)
    if payment is None or payment.status != PaymentStatus.PENDING:
        return None
    try:
        result = await ctx.provider.resolve_charge(charge_request(payment))
    except ProviderUnavailable as exc:
        raise ServiceUnavailable(
            "The payment provider is unavailable; an earlier attempt of this request is being "
            "resolved, retry later",
            code="provider_unavailable",
            retry_after=math.ceil(ctx.settings.idempotency_lock_seconds),
        ) from exc
    if result.abandoned:
        await abandon_payment(ctx, payment, release_key=False)  # this request holds the key now
        return None
    return await finish_payment(ctx, payment.user_id, payment.idempotency_key, payment, result)


async def _start_payment(
    ctx: Payments, user: Principal, request: PaymentRequest, key: str, known: bool
) -> Payment:
    """Insert the ``pending`` payment: of a booking known from ``booking.created`` without asking
    booking-service; of one not known here (yet: its event is on its way), after asking it."""
    if known:
        try:
            payment = await _start_known_payment(ctx, user, request, key)
        except IntegrityError as exc:  # the index's one live payment per booking (rolled back)
            # Paid or being paid. Only booking-service knows whether it confirmed the booking
            # already (409 booking_not_pending, raised here) or not yet (booking_already_paid).
            await ctx.bookings.payable_booking(request.booking_id, user.user_id, request.amount)
            raise await _already_paid(ctx, request.booking_id) from exc
        if payment is not None:
            return payment
    booking = await ctx.bookings.payable_booking(request.booking_id, user.user_id, request.amount)
    try:
        return await _start_fetched_payment(ctx, user, request, key, booking)
    except IntegrityError as exc:
        raise await _already_paid(ctx, booking.id) from exc


# Both take the booking's lock first, as finishing a payment does: a decline that is being
# recorded right now is counted (by a statement after the lock) before another attempt may
# start, and an end of the booking recorded before it is seen. The lock is a statement of its
# own: in READ COMMITTED a statement's snapshot is taken when it starts, before a lock it
# waits for inside it is granted, so it would not see what the lock's holder committed.


async def _start_known_payment(
    ctx: Payments, user: Principal, request: PaymentRequest, key: str
) -> Payment | None:
    """None when the booking's row is gone after all (it is pruned a day after its hold)."""
    when = repository.PayableWhen(datetime.now(UTC), request.amount, ctx.settings.max_declines_per_booking)
    async with ctx.sessionmaker() as session, session.begin():
        await repository.lock_booking(session, request.booking_id)
        # The usual case in one statement: the booking read and, if payable, the payment added.
        known = await repository.start_known_payment(session, _new_payment(ctx, user, request, key), when)
        if known is None:
            return None
        if known.payment is not None:
            return known.payment
        booking = check_payable(known_booking_view(known.booking, known.ended), user.user_id, request.amount)
        _check_attempts_left(ctx, known.declines)
        # Not reached unless the clock moved backwards past the hold's end: the general way.
        return await _add_payment(session, ctx, user, request, key, booking)


async def _start_fetched_payment(
    ctx: Payments, user: Principal, request: PaymentRequest, key: str, booking: BookingView
) -> Payment:
    async with ctx.sessionmaker() as session, session.begin():
        await repository.lock_booking(session, booking.id)
        return await _add_payment(session, ctx, user, request, key, booking)


async def _add_payment(
    session: AsyncSession,
    ctx: Payments,
    user: Principal,
    request: PaymentRequest,
    key: str,
    booking: BookingView,
) -> Payment:
    """Under the booking's lock; raises IntegrityError when the booking has a live payment."""
    payment = _new_payment(ctx, user, request, key)
    payment.user_email = user.email or booking.user_email or ""
    payment.amount, payment.currency = booking.total_amount, booking.currency
    most = ctx.settings.max_declines_per_booking
    started = await repository.start_payment_of_key(session, payment, most)
    if started is None:  # the declines are counted in the statement, and again for the message
        _check_attempts_left(ctx, await repository.count_declines(session, booking.id))
        raise AssertionError("declines counted twice under the booking's lock differ")
    return started


def _new_payment(ctx: Payments, user: Principal, request: PaymentRequest, key: str) -> Payment:
    """The request's pending payment; its booking's amount and currency are set by the caller."""
    number = request.card_number
    return Payment(
        id=uuid.uuid4(),
        user_id=user.user_id,
        user_email=user.email,
        booking_id=request.booking_id,
        status=PaymentStatus.PENDING,
        payment_method=request.payment_method,
        card_brand=card_brand(number) if number else None,
        card_last4=card_last4(number) if number else None,
        idempotency_key=key,
        provider=ctx.provider.name,
    )


def _check_attempts_left(ctx: Payments, declines: int) -> None:
    if declines >= ctx.settings.max_declines_per_booking:
        raise Conflict(
            f"This booking's card was declined {declines} times; choose the seats again",
            code="too_many_declines",
        )


async def _already_paid(ctx: Payments, booking_id: uuid.UUID) -> Conflict:
    """409: paid (final), or being paid: then Retry-After says when it is finished or resolved."""
    async with ctx.sessionmaker() as session:
        live = await repository.live_payment_of_booking(session, booking_id)
    headers = None
    if live is not None and live.status == PaymentStatus.PENDING:
        headers = pending_payment_retry_after(live.updated_at, ctx.settings)
    message = "This booking is already paid or being paid"
    return Conflict(message, code="booking_already_paid", headers=headers)


def charge_request(payment: Payment, card_number: str | None = None) -> ChargeRequest:
    """The provider call of a payment, under the payment's own key."""
    return ChargeRequest(
        f"payment:{payment.id}", payment.amount, payment.currency, str(payment.booking_id), card_number
    )


async def _charge(ctx: Payments, payment: Payment, card_number: str | None) -> ChargeResult:
    """Charge under the payment's own key, retrying transient failures with exponential back-off."""
    request = charge_request(payment, card_number)
    attempts = ctx.settings.provider_max_attempts
    for attempt in range(1, attempts + 1):
        try:
            return await ctx.provider.charge(request)
        except ProviderUnavailable:
            if attempt == attempts:
                raise
            logger.warning("provider unavailable for payment %s (attempt %d)", payment.id, attempt)
            await asyncio.sleep(ctx.settings.provider_retry_base_ms * 2 ** (attempt - 1) / 1000)
    raise AssertionError("unreachable")


async def _give_up(ctx: Payments, payment: Payment) -> None:
    """The provider stayed unavailable: the attempt failed, the booking stays payable (no event)."""
    async with ctx.sessionmaker() as session, session.begin():
        locked = await repository.get_payment(session, payment.id, lock=True)
        if locked is not None and locked.status == PaymentStatus.PENDING:
            _set_status(locked, PaymentStatus.FAILED, failure_reason="provider_unavailable")
    PAYMENTS.labels("failed").inc()


async def abandon_payment(ctx: Payments, payment: Payment, *, release_key: bool = True) -> bool:
    """The provider voided the payment's key, nothing was charged: the attempt failed
    (``abandoned``, not a decline: no event), its key is released (unless the request
    resolving it holds the key), the booking payable again.

    False when the payment was already finished.
    """
    async with ctx.sessionmaker() as session, session.begin():
        locked = await repository.get_payment(session, payment.id, lock=True)
        if locked is None or locked.status != PaymentStatus.PENDING:
            return False
        _set_status(locked, PaymentStatus.FAILED, failure_reason=ABANDONED)
        if release_key:
            await ctx.idempotency.release_payment(session, locked.user_id, locked.idempotency_key, locked.id)
    PAYMENTS.labels("failed").inc()
    return True


async def finish_payment(
    ctx: Payments, user_id: uuid.UUID, key: str, payment: Payment, result: ChargeResult
) -> StoredResponse:
    """Store the outcome, its event and the key's answer in one transaction."""
    async with ctx.sessionmaker() as session, session.begin():
        await repository.lock_booking(session, payment.booking_id)
        # After the lock (a statement of its own, see above), so what follows sees an end of the
        # booking recorded by a consumer just before.
        if result.approved and (done := await _succeed_live(session, user_id, key, payment, result)):
            return done
        locked, ended = await repository.payment_and_booking_end(session, payment.id)
        response = await _apply_outcome(session, ctx, locked, ended, result)
        await ctx.idempotency.complete(session, user_id, key, response)
    return response


async def _succeed_live(
    session: AsyncSession, user_id: uuid.UUID, key: str, payment: Payment, result: ChargeResult
) -> StoredResponse | None:
    """The usual outcome in one statement: approved, the payment still pending, its booking not
    ended. None, with nothing written, when it is not so (a twin finished it, the booking ended)."""
    now = datetime.now(UTC)
    changes = {"status": PaymentStatus.SUCCEEDED, "provider_charge_id": result.charge_id, "updated_at": now}
    succeeded = repository.copy_payment(payment, **changes)
    response = _answer(succeeded)
    event = payment_completed(succeeded)
    answer = (user_id, key, response.status, response.body)
    if not await repository.succeed_payment_of_live_booking(session, succeeded, event, answer):
        return None
    PAYMENTS.labels("succeeded").inc()
    return response


async def _apply_outcome(
    session: AsyncSession,
    ctx: Payments,
    payment: Payment,
    ended: CancelledBooking | None,
    result: ChargeResult,
) -> StoredResponse:
    if payment.status != PaymentStatus.PENDING:  # a resumed twin got here first
        return _answer(payment)
    if not result.approved:
        return await _decline(session, ctx, payment, result)
    _set_status(payment, PaymentStatus.SUCCEEDED, provider_charge_id=result.charge_id)
    await publish_payment_completed(session, payment)
    PAYMENTS.labels("succeeded").inc()
    if ended is not None:  # the booking ended (cancelled, expired, failed) while we charged
        await refund_payment(session, ctx.provider, payment, late_payment_refund_reason(ended.reason))
    return _answer(payment)


async def _decline(
    session: AsyncSession, ctx: Payments, payment: Payment, result: ChargeResult
) -> StoredResponse:
    """A declined card: the booking stays payable until its last allowed attempt."""
    reason = result.decline_code or "card_declined"
    _set_status(payment, PaymentStatus.FAILED, failure_reason=reason)
    await session.flush()
    declines = await repository.count_declines(session, payment.booking_id)
    attempts_left = max(0, ctx.settings.max_declines_per_booking - declines)
    await publish_payment_failed(session, payment, reason, attempts_left)
    PAYMENTS.labels("declined").inc()
    return _declined(payment, result.message or "The card was declined", attempts_left)


def _set_status(payment: Payment, status: PaymentStatus, **values: Any) -> None:
    payment.status = status
    payment.updated_at = datetime.now(UTC)
    for name, value in values.items():
        setattr(payment, name, value)


def _answer(payment: Payment) -> StoredResponse:
    if payment.status == PaymentStatus.FAILED:
        return _declined(payment, "The card was declined")
    if payment.status == PaymentStatus.REFUNDED:
        message = "The booking was cancelled while it was being paid; the charge was refunded"
        return _error(
            409, "booking_cancelled", message, {"payment_id": str(payment.id), "status": "refunded"}
        )
    return StoredResponse(201, PaymentOut.model_validate(payment).model_dump(mode="json"))


def _declined(payment: Payment, message: str, attempts_left: int | None = None) -> StoredResponse:
    details: dict[str, Any] = {"payment_id": str(payment.id), "reason": payment.failure_reason}
    if attempts_left is not None:
        details["attempts_left"] = attempts_left
    return _error(402, "payment_declined", message, details)


def _error(status: int, code: str, message: str, details: dict[str, Any]) -> StoredResponse:
    return StoredResponse(status, error_body(code, message, details))
