"""What payment-service needs from a card provider (acquirer).

Every call carries an idempotency key. The provider must answer a repeated key
with the outcome it recorded the first time instead of charging again: that is
what makes a retry after a timeout or a crash safe (docs/contracts.md, invariant 2).

A charge whose request died leaves its key open; ``resolve_charge`` closes it
for good (the equivalent of a real acquirer's cancel or void of an intent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# The decline code of a charge key voided by ``resolve_charge`` before anything was charged.
ABANDONED = "abandoned"


class ProviderUnavailable(Exception):
    """A transient failure: nothing was charged, the same call may be retried with the same key."""


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    amount: int
    currency: str
    reference: str
    # The full number lives only in memory for the duration of the call; never stored or logged.
    card_number: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ChargeResult:
    charge_id: str
    approved: bool
    decline_code: str | None = None
    message: str | None = None

    @property
    def abandoned(self) -> bool:
        """Nothing was charged: the key was voided (a void is not a card decline)."""
        return not self.approved and self.decline_code == ABANDONED


@dataclass(frozen=True)
class RefundRequest:
    idempotency_key: str
    charge_id: str
    amount: int
    currency: str


@dataclass(frozen=True)
class RefundResult:
    refund_id: str


class PaymentProvider(Protocol):
    """A card provider. Every call is idempotent per ``idempotency_key``."""

    name: str

    async def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge a card; a decline is a result, a transient failure raises ProviderUnavailable."""
        ...

    async def resolve_charge(self, request: ChargeRequest) -> ChargeResult:
        """The outcome recorded under the charge's key; when nothing was charged, void the key.

        Atomic at the provider: the void is recorded under the key (not approved, decline
        code ``abandoned``), so a charge arriving later with that key (a request that was
        slow, not dead) is answered the void and takes no money. The card number is not
        needed. Raises ProviderUnavailable on a transient failure.
        """
        ...

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Refund a charge in full; raises ProviderUnavailable on a transient failure."""
        ...
