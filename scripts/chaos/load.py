"""A steady purchase load through the gateway: a new purchase (book two seats of their own,
then pay for them) every 1/rate seconds, for a bounded time, each timed on the monotonic clock.

A purchase whose booking is refused is over (the next one takes new seats). A payment that is
refused for an outage (no answer, 5xx, 409 while the key or the booking is busy) is tried again
with the same Idempotency-Key, as a client would, until PAY_PATIENCE_SECONDS: the key makes a
retry of a payment that did go through answer that payment, never charge again. The requests are
the benchmark's (scripts/benchmark/load.py) on its keep-alive connections (wire.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from load import Job, Outcome, book_seats, pay_booking
from wire import Connection, WireError

PAY_PATIENCE_SECONDS = 15.0
RETRY_PAUSE_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 10.0
RETRYABLE = {0, 409, 429, 500, 502, 503, 504}


@dataclass
class Purchase:
    started: float  # time.monotonic()
    finished: float
    outcome: Outcome
    # (sent, answered, accepted) of each request, on the same clock
    booked: tuple[float, float, bool] = (0.0, 0.0, False)
    payments: list[tuple[float, float, bool]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """The client was told so: booking 201, then payment 201."""
        return self.outcome.payment_id is not None


@dataclass
class SteadyLoad:
    base_url: str
    tokens: list[str]
    showtime_id: str
    seats: list[str]
    rate: float  # purchases started per second
    connections: int = 16
    purchases: list[Purchase] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # every answer's status (0: none)

    async def run(self, seconds: float) -> list[Purchase]:
        """Start purchases for ``seconds``, then wait for those under way; the seats run out first
        only if ``rate * seconds`` exceeds half of them."""
        pool: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(self.connections):
            pool.put_nowait(Connection(self.base_url, timeout=REQUEST_TIMEOUT_SECONDS))
        pairs = iter(zip(self.seats[0::2], self.seats[1::2], strict=False))
        under_way: list[asyncio.Task[None]] = []
        began = time.monotonic()
        for index, pair in enumerate(pairs):
            start_at = began + index / self.rate
            if start_at - began >= seconds:
                break
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
            job = Job("book_pay", user=index % len(self.tokens), showtime_id=self.showtime_id, seats=pair)
            under_way.append(asyncio.create_task(self._purchase(pool, job)))
        await asyncio.gather(*under_way)
        while not pool.empty():
            await pool.get_nowait().close()
        return self.purchases

    async def _purchase(self, pool: asyncio.Queue[Connection], job: Job) -> None:
        started = time.monotonic()
        connection = await pool.get()
        try:
            sent = time.monotonic()
            outcome = await self._book(connection, job)
            purchase = Purchase(started, started, outcome, (sent, time.monotonic(), outcome.status == 201))
            if outcome.status == 201:
                await self._pay(connection, purchase)
        finally:
            pool.put_nowait(connection)
        purchase.finished = time.monotonic()
        self.purchases.append(purchase)

    async def _book(self, connection: Connection, job: Job) -> Outcome:
        try:
            outcome = await book_seats(connection, job, self.tokens)
        except WireError:
            outcome = Outcome(0.0, 0, showtime_id=job.showtime_id, seats=job.seats, user=job.user)
        self.statuses[outcome.status] += 1
        return outcome

    async def _pay(self, connection: Connection, purchase: Purchase) -> None:
        booked, token = purchase.outcome, self.tokens[purchase.outcome.user]
        deadline = time.monotonic() + PAY_PATIENCE_SECONDS
        while True:
            sent = time.monotonic()
            try:
                await pay_booking(connection, booked, token)
            except WireError:
                booked.status = 0
            purchase.payments.append((sent, time.monotonic(), booked.status == 201))
            self.statuses[booked.status] += 1
            if booked.status not in RETRYABLE or time.monotonic() > deadline:
                return
            await asyncio.sleep(RETRY_PAUSE_SECONDS)
