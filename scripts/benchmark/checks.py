"""After the load: the invariants (no seat sold twice, no booking charged twice), the
services' resident memory, and the filler rows for the bookings-in-the-database figures.

SQL here is read-only on the booking and payment schemas, except ``add_filler_bookings``,
which writes old confirmed bookings of made-up showtimes into the booking schema of the
benchmark's own database (only when asked, and never into a database it was not named).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import asyncpg
from load import Outcome
from stack import children_by_parent, tree

SEATS_SOLD_TWICE = """
SELECT showtime_id, seat_id, count(*) AS bookings FROM booking.booking_seats
WHERE status IN ('pending', 'confirmed') GROUP BY showtime_id, seat_id HAVING count(*) > 1 LIMIT 10
"""
SEAT_ROWS_DISAGREE = """
SELECT b.id FROM booking.bookings b JOIN booking.booking_seats s ON s.booking_id = b.id
WHERE s.status <> b.status LIMIT 10
"""
PAYMENTS_TWICE = """
SELECT booking_id, count(*) AS payments FROM payment.payments
WHERE status IN ('succeeded', 'refunded') GROUP BY booking_id HAVING count(*) > 1 LIMIT 10
"""
CHARGED_TWICE = """
SELECT reference, count(*) AS charges FROM payment.simulated_provider_ledger
WHERE operation = 'charge' AND approved GROUP BY reference HAVING count(*) > 1 LIMIT 10
"""
# Old confirmed bookings of made-up past showtimes (200 seats each), one seat per booking.
FILLER = """
WITH filler AS (
  SELECT g, md5($2 || (g / 200)::text)::uuid AS showtime_id, 'F' || (g % 200) AS seat_id
  FROM generate_series(1, $1::int) AS g
), rows AS (
  INSERT INTO booking.bookings (id, user_id, user_email, showtime_id, status, seats, total_amount, currency,
    hold_token, expires_at, movie_title, theater_name, auditorium_name, starts_at, payment_id,
    created_at, updated_at)
  SELECT gen_random_uuid(), md5($2 || 'user' || (g % 5000)::text)::uuid, 'filler@bench.invalid',
    showtime_id, 'confirmed', ARRAY[seat_id], 90000, 'VND', md5(g::text), now() - interval '30 days',
    'Filler', 'Filler', 'Hall', now() - interval '29 days', 'filler', now() - interval '30 days',
    now() - interval '30 days'
  FROM filler RETURNING id, showtime_id, seats
)
INSERT INTO booking.booking_seats (booking_id, seat_id, showtime_id, status, tier, price)
SELECT id, seats[1], showtime_id, 'confirmed', 'standard', 90000 FROM rows
"""


def client_side_double_sales(outcomes: list[Outcome]) -> list[str]:
    """Seats that two successful (201) bookings of this run were both given."""
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for outcome in outcomes:
        if outcome.booking_id:
            for seat in outcome.seats:
                owners[(outcome.showtime_id, seat)].add(outcome.booking_id)
    return [f"{showtime} {seat}" for (showtime, seat), ids in owners.items() if len(ids) > 1]


async def database_violations(dsn: str) -> dict[str, list[str]]:
    """Each invariant query with the rows that break it (all lists empty when everything holds)."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction(readonly=True):
            return {
                name: [str(dict(row)) for row in await connection.fetch(query)]
                for name, query in (
                    ("seat held or sold twice", SEATS_SOLD_TWICE),
                    ("seat rows disagree with their booking", SEAT_ROWS_DISAGREE),
                    ("booking paid twice", PAYMENTS_TWICE),
                    ("booking charged twice by the provider", CHARGED_TWICE),
                )
            }
    finally:
        await connection.close()


async def booking_rows(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM booking.bookings"))
    finally:
        await connection.close()


async def add_filler_bookings(dsn: str, count: int, run_id: str) -> None:
    """Insert ``count`` old confirmed bookings (and their seat rows), then ANALYZE."""
    connection = await asyncpg.connect(dsn)
    try:
        for start in range(0, count, 200_000):  # batches keep each transaction's memory modest
            await connection.execute(FILLER, min(200_000, count - start), f"{run_id}-{start}")
        await connection.execute("ANALYZE booking.bookings")
        await connection.execute("ANALYZE booking.booking_seats")
    finally:
        await connection.close()


def resident_memory(run_dir: Path) -> dict[str, int]:
    """RSS in bytes of every process the runner started (its pid files), children included."""
    children = children_by_parent()
    found: dict[str, int] = {}
    pid_files = sorted((run_dir / "pids").glob("*.pid"))
    nginx = run_dir / "nginx.pid"
    for pid_file in [*pid_files, *([nginx] if nginx.exists() else [])]:
        pid = int(pid_file.read_text().strip() or 0)
        name = "gateway (nginx)" if pid_file == nginx else pid_file.stem
        found[name] = sum(_rss(p) for p in tree(pid, children)) if pid else 0
    return found


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0
