"""The lease of a payment in progress, and what a conflict with one tells the client.

A request holds its ``Idempotency-Key`` until ``locked_until``, and its payment is presumed
alive while it was touched (``updated_at``) within ``IDEMPOTENCY_LOCK_SECONDS``. Past that,
a retry with the key may resume it, and the reconciler resolves the payment on its next
pass. A 409 a retry can outwait says in ``Retry-After`` when that is.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from payment_service.config import PaymentSettings


def retry_after(until: datetime) -> dict[str, str]:
    """A ``Retry-After`` header for a conflict that lasts until ``until`` (at least 1 s)."""
    seconds = (until - datetime.now(UTC)).total_seconds()
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def pending_payment_retry_after(updated_at: datetime, settings: PaymentSettings) -> dict[str, str]:
    """A pending payment is finished by its request, or resolved by the end of its lease plus
    one reconciler pass."""
    lease = settings.idempotency_lock_seconds + settings.reconciler_interval_seconds
    return retry_after(updated_at + timedelta(seconds=lease))
