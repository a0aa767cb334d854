"""payment-service business metrics (names fixed by docs/contracts.md)."""

from __future__ import annotations

from prometheus_client import Counter

PAYMENTS = Counter("payments_total", "Payment attempts by result (succeeded, declined, failed)", ["result"])
REFUNDS = Counter("refunds_total", "Refunds of succeeded payments")
IDEMPOTENT_REPLAYS = Counter(
    "idempotent_replays_total", "POST /process answers replayed from an idempotency record"
)
RECONCILED = Counter(
    "payment_reconciliations_total",
    "Payments left pending past their lease, resolved by the reconciler, by outcome",
    ["outcome"],
)
