"""payment-service HTTP API (thin: parse, authorize, call the rules, shape the answer)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, status
from fastapi.responses import JSONResponse

from payment_service import repository, service
from payment_service.refunds import request_refund
from payment_service.schemas import PaymentOut, PaymentPage, PaymentRequest
from payment_service.service import PAYING, Payments
from servicekit.db import SessionDep
from servicekit.errors import NotFound, error_responses
from servicekit.security import CurrentUser

router = APIRouter(tags=["payments"])
REPLAY_HEADER = "Idempotent-Replayed"


PaymentsDep = Annotated[Payments, Depends(PAYING)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Your key for this payment; when absent, `payment:{booking_id}`",
    ),
]


# /process answers what it stored under the idempotency key (a payment, or the error body of a
# decline), so the models are documented here rather than applied by FastAPI.
_PAID = {
    "model": PaymentOut,
    "description": f"The payment; a replayed first answer (201, 402 or 409) carries `{REPLAY_HEADER}: true`",
}


@router.post(
    "/process",
    status_code=status.HTTP_201_CREATED,
    response_model=None,
    responses={status.HTTP_201_CREATED: _PAID, **error_responses(401, 402, 404, 409, 422, 502, 503)},
)
async def process(
    body: PaymentRequest, user: CurrentUser, payments: PaymentsDep, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Pay a pending booking once; a retry with the same `Idempotency-Key` replays the first answer.

    402 `payment_declined` when the card is declined; the booking stays payable with another
    card (`details.attempts_left`) until its last allowed decline, then 409 `too_many_declines`.
    A 409 that a retry can outwait (`idempotency_busy`, `booking_already_paid` while the other
    payment is still pending) carries `Retry-After`.
    """
    key = idempotency_key or f"payment:{body.booking_id}"
    result = await service.process_payment(payments, user, body, key)
    headers = {REPLAY_HEADER: "true"} if result.replayed else None
    return JSONResponse(result.response.body, status_code=result.response.status, headers=headers)


@router.get("/payments", response_model=PaymentPage, responses=error_responses(401, 422))
async def list_payments(
    user: CurrentUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> PaymentPage:
    """The caller's payments, newest first."""
    items, total = await repository.list_payments(session, user.user_id, limit, offset)
    return PaymentPage(
        items=[PaymentOut.model_validate(p) for p in items], total=total, limit=limit, offset=offset
    )


@router.get("/payments/{payment_id}", response_model=PaymentOut, responses=error_responses(401, 404, 422))
async def get_payment(payment_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> PaymentOut:
    """One of the caller's payments (an admin may read any)."""
    payment = await repository.get_payment(session, payment_id)
    if payment is None or (payment.user_id != user.user_id and not user.is_admin):
        raise NotFound("Payment not found", code="payment_not_found")
    return PaymentOut.model_validate(payment)


@router.post(
    "/payments/{payment_id}/refund",
    response_model=PaymentOut,
    responses=error_responses(401, 404, 409, 422, 503),
)
async def refund(
    payment_id: uuid.UUID, user: CurrentUser, session: SessionDep, payments: PaymentsDep
) -> PaymentOut:
    """Refund a succeeded payment in full: an admin any time, the owner until the cancellation
    cut-off (409 `cancellation_closed`) and before a ticket is admitted (409 `tickets_admitted`)."""
    payment = await request_refund(
        session, payments.provider, payments.bookings, user, payment_id, payments.settings
    )
    return PaymentOut.model_validate(payment)
