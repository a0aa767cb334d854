"""The expiry sweeper: a background loop in every replica (they never step on each other)."""

from __future__ import annotations

import asyncio
import logging

from booking_service.config import BookingSettings
from booking_service.lifecycle import expire_stale_holds
from booking_service.service import BookingContext
from servicekit.app import Runtime

logger = logging.getLogger("booking_service.sweeper")


async def run_expiry_sweeper(runtime: Runtime, ctx: BookingContext) -> None:
    """Expire unpaid holds every ``sweeper_interval_seconds``; a full batch goes again at once."""
    settings: BookingSettings = ctx.settings
    while True:
        try:
            expired = await expire_stale_holds(runtime.sessionmaker, ctx.holds, settings.sweeper_batch_size)
        except Exception as exc:  # a database blip must not end the loop
            logger.warning("expiry sweep failed: %s", type(exc).__name__)
            expired = 0
        if expired:
            logger.info("expired %d unpaid bookings", expired)
        if expired < settings.sweeper_batch_size:
            await asyncio.sleep(settings.sweeper_interval_seconds)
