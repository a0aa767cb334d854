"""A simulated card provider with documented test cards and its own ledger.

Test cards (any other Luhn-valid number succeeds; no card at all succeeds too):

| card number        | outcome                                              |
| ------------------ | ---------------------------------------------------- |
| 4242424242424242   | approved                                             |
| 5555555555554444   | approved (mastercard)                                |
| 4000000000000002   | declined: ``card_declined``                          |
| 4000000000009995   | declined: ``insufficient_funds``                     |
| 4000000000000069   | declined: ``expired_card``                           |
| 4000000000000119   | transient failure on every attempt (provider down)   |
| 4000000000003220   | transient failure twice per key, then approved       |
| 4000000000000259   | stalls 30 s before charging, then approved           |
| 4000000000000341   | charges (approved), then stalls 30 s before answering |

The two stalling cards are for crash tests: a payment process killed during the
first stall has charged nothing, during the second it has charged.

The ledger (table ``simulated_provider_ledger``) holds one row per idempotency
key, so a repeated key returns the first outcome and never charges again. A key
voided by ``resolve_charge`` holds a ``void`` row: a later charge with it gets
that row's outcome (not approved, ``abandoned``) and takes no money.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncEngine

from payment_service import repository
from payment_service.cards import card_brand, card_last4
from payment_service.models import ProviderLedgerEntry
from payment_service.providers.base import (
    ABANDONED,
    ChargeRequest,
    ChargeResult,
    ProviderUnavailable,
    RefundRequest,
    RefundResult,
)

DECLINING_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
}
DECLINE_MESSAGES = {
    "card_declined": "The card was declined",
    "insufficient_funds": "The card has insufficient funds",
    "expired_card": "The card has expired",
    ABANDONED: "The payment was abandoned before anything was charged",
}
ALWAYS_UNAVAILABLE_CARD = "4000000000000119"
FLAKY_CARD = "4000000000003220"
FLAKY_FAILURES = 2
STALL_BEFORE_CHARGE_CARD = "4000000000000259"
STALL_AFTER_CHARGE_CARD = "4000000000000341"
STALL_SECONDS = 30.0


class SimulatedProvider:
    """Stands in for an acquirer; its ledger is its own table, written in its own transactions."""

    name = "simulated"

    def __init__(self, autocommit: AsyncEngine) -> None:
        # Every ledger write is one statement: it needs no transaction around it.
        self._autocommit = autocommit
        self._flaky_attempts: Counter[str] = Counter()

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key; a repeated (or voided) key returns the recorded outcome."""
        if request.card_number == STALL_BEFORE_CHARGE_CARD:
            await asyncio.sleep(STALL_SECONDS)
        self._fail_transiently(request)  # an unreachable acquirer answers nothing, recorded or not
        async with self._autocommit.connect() as connection:
            entry = await repository.add_ledger_entry(connection, _charge_entry(request))
        if request.card_number == STALL_AFTER_CHARGE_CARD:
            await asyncio.sleep(STALL_SECONDS)
        return _charge_result(entry)

    async def resolve_charge(self, request: ChargeRequest) -> ChargeResult:
        """The key's recorded outcome, or a void recorded under it (INSERT .. ON CONFLICT DO
        NOTHING on the key: a charge and a void of one key never both land)."""
        async with self._autocommit.connect() as connection:
            entry = await repository.add_ledger_entry(connection, _void_entry(request))
        return _charge_result(entry)

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund once per idempotency key."""
        entry = ProviderLedgerEntry(
            idempotency_key=request.idempotency_key,
            operation="refund",
            operation_id=f"re_{uuid.uuid4().hex}",
            reference=request.charge_id,
            amount=request.amount,
            currency=request.currency,
            approved=True,
        )
        async with self._autocommit.connect() as connection:
            recorded = await repository.add_ledger_entry(connection, entry)
        return RefundResult(refund_id=recorded.operation_id)

    def _fail_transiently(self, request: ChargeRequest) -> None:
        if request.card_number == ALWAYS_UNAVAILABLE_CARD:
            raise ProviderUnavailable("simulated acquirer timeout")
        if request.card_number == FLAKY_CARD:
            self._flaky_attempts[request.idempotency_key] += 1
            if self._flaky_attempts[request.idempotency_key] <= FLAKY_FAILURES:
                raise ProviderUnavailable("simulated acquirer timeout")


def _charge_entry(request: ChargeRequest) -> ProviderLedgerEntry:
    number = request.card_number
    decline_code = DECLINING_CARDS.get(number or "")
    return ProviderLedgerEntry(
        idempotency_key=request.idempotency_key,
        operation="charge",
        operation_id=f"ch_{uuid.uuid4().hex}",
        reference=request.reference,
        amount=request.amount,
        currency=request.currency,
        approved=decline_code is None,
        decline_code=decline_code,
        card_brand=card_brand(number) if number else None,
        card_last4=card_last4(number) if number else None,
    )


def _void_entry(request: ChargeRequest) -> ProviderLedgerEntry:
    return ProviderLedgerEntry(
        idempotency_key=request.idempotency_key,
        operation="void",
        operation_id=f"vd_{uuid.uuid4().hex}",
        reference=request.reference,
        amount=request.amount,
        currency=request.currency,
        approved=False,
        decline_code=ABANDONED,
    )


def _charge_result(entry: repository.LedgerRow) -> ChargeResult:
    code = entry.decline_code
    return ChargeResult(
        charge_id=entry.operation_id,
        approved=entry.approved,
        decline_code=code,
        message=DECLINE_MESSAGES.get(code) if code else None,
    )
