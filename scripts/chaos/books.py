"""Reading the books after a scenario: booking's and payment's databases (on the node that
takes writes now) and the mail catcher's index, after a bounded settle."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import asyncpg
from checks import database_violations
from purchase import reference, tickets_mails

from chaos.ledger import Books

CONFIRMED = "SELECT id::text FROM booking.bookings WHERE showtime_id = $1::uuid AND status = 'confirmed'"
DOUBLE_SOLD = ("seat held or sold twice", "seat rows disagree with their booking")
DOUBLE_CHARGED = ("booking paid twice", "booking charged twice by the provider")


async def confirmed_bookings(dsn: str, showtime_id: str) -> frozenset[str]:
    connection = await asyncpg.connect(dsn)
    try:
        return frozenset(row[0] for row in await connection.fetch(CONFIRMED, showtime_id))
    finally:
        await connection.close()


def mails_by_booking(index: Path, bookings: frozenset[str] | set[str]) -> Counter[str]:
    """Tickets mails in the catcher per booking id (the subject names the id's first 8 digits)."""
    by_reference = {reference(booking): booking for booking in bookings}
    found = tickets_mails(index, 0, by_reference.keys())
    return Counter({by_reference[ref]: len(times) for ref, times in found.items()})


async def settle(dsn: str, index: Path, showtime_id: str, told: set[str], within: float) -> float:
    """Until every purchase the clients were told of is confirmed and every confirmed booking
    has its tickets mail, or ``within`` seconds: how long that took."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        confirmed = await confirmed_bookings(dsn, showtime_id)
        mails = await asyncio.to_thread(mails_by_booking, index, confirmed)
        if told <= confirmed and all(mails[booking] for booking in confirmed):
            break
        await asyncio.sleep(0.5)
    return time.monotonic() - began


async def read_books(dsn: str, index: Path, showtime_id: str) -> Books:
    confirmed = await confirmed_bookings(dsn, showtime_id)
    violations = await database_violations(dsn)
    return Books(
        confirmed=confirmed,
        mails=await asyncio.to_thread(mails_by_booking, index, confirmed),
        double_sold_seats=sum(len(violations[name]) for name in DOUBLE_SOLD),
        double_charges=sum(len(violations[name]) for name in DOUBLE_CHARGED),
    )
