"""The payment reconciler: resolves payments left ``pending`` past their lease.

A request that dies between inserting its payment and storing the outcome (a killed
process, a database refusing connections) leaves the payment pending and its key in
flight. Every replica runs this loop; a pass:

1. claims up to ``RECONCILER_BATCH_SIZE`` payments pending and untouched for longer than
   the lease (``IDEMPOTENCY_LOCK_SECONDS``) and touches them, in one short transaction
   (``FOR UPDATE SKIP LOCKED``): no other replica takes them for another lease;
2. holding no database connection, asks the provider to resolve each one under the
   payment's own key (``resolve_charge``): the recorded outcome, or, when nothing was
   charged, a void recorded at once, so a request that was slow rather than dead can no
   longer take money under that key;
3. finishes it: charged or declined through ``service.finish_payment``, the path a live
   request takes (outcome, event, the key's answer, a refund when the booking is gone);
   nothing charged through ``service.abandon_payment`` (failed ``abandoned``, no event, the
   key released, the booking payable again).

A database or provider failure ends the pass, not the loop; the payments it had claimed
come round again after another lease.
"""

from __future__ import annotations

import asyncio
import logging

from payment_service import repository
from payment_service.metrics import RECONCILED
from payment_service.models import Payment
from payment_service.service import Payments, abandon_payment, charge_request, finish_payment

logger = logging.getLogger("payment_service.reconciler")


async def run_reconciler(ctx: Payments) -> None:
    """Resolve stale payments every ``reconciler_interval_seconds``; a full batch goes again at once."""
    while True:
        claimed = await reconcile_stale_payments(ctx)
        if claimed < ctx.settings.reconciler_batch_size:
            await asyncio.sleep(ctx.settings.reconciler_interval_seconds)


async def reconcile_stale_payments(ctx: Payments) -> int:
    """One pass; returns how many payments it claimed and resolved (0 when it ended early)."""
    try:
        claimed = await _claim(ctx)
    except Exception as exc:  # a database blip: the next pass tries again
        logger.warning("payment reconciliation could not claim payments: %s", type(exc).__name__)
        return 0
    for index, payment in enumerate(claimed):
        try:
            outcome = await resolve_payment(ctx, payment)
        except Exception as exc:  # the rest are left for after another lease
            RECONCILED.labels("error").inc(len(claimed) - index)
            logger.warning(
                "payment reconciliation stopped at payment %s: %s; %d left for later",
                payment.id,
                type(exc).__name__,
                len(claimed) - index,
            )
            return 0
        RECONCILED.labels(outcome).inc()
        logger.info("payment %s of booking %s resolved: %s", payment.id, payment.booking_id, outcome)
    return len(claimed)


async def _claim(ctx: Payments) -> list[Payment]:
    settings = ctx.settings
    async with ctx.sessionmaker() as session, session.begin():
        return await repository.claim_stale_payments(
            session, settings.idempotency_lock_seconds, settings.reconciler_batch_size
        )


async def resolve_payment(ctx: Payments, payment: Payment) -> str:
    """Ask the provider what became of the payment's charge and finish the payment accordingly;
    returns the outcome (succeeded, refunded, declined or abandoned)."""
    result = await ctx.provider.resolve_charge(charge_request(payment))
    if result.abandoned:
        await abandon_payment(ctx, payment)
        return "abandoned"
    response = await finish_payment(ctx, payment.user_id, payment.idempotency_key, payment, result)
    if not result.approved:
        return "declined"
    return "succeeded" if response.status == 201 else "refunded"
