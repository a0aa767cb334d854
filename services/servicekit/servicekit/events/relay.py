"""The outbox relay: publishes committed events, persistent and confirmed, at least once.

A round starts as soon as a commit of this process wrote outbox rows (its
``OutboxWakeup``), or every ``OUTBOX_POLL_INTERVAL`` as the safety net for rows
no wake-up announced (written by a process that died before relaying them, or
left by a failed round). In one transaction a round claims a batch, publishes
all of it at once, awaits the broker's confirms together, and keeps marked only
the events the broker confirmed.

Several replicas may run it at once: rows are claimed with FOR UPDATE SKIP LOCKED,
so each event is published by one relay; a crash between publish and commit means
a redelivery, which the consumers' event-id ledger absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from servicekit.config import ServiceSettings
from servicekit.events.broker import Broker
from servicekit.events.outbox import OutboxWakeup
from servicekit.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE
from servicekit.tracing import split_trace_context

logger = logging.getLogger("servicekit.relay")
BATCH_SIZE = 100


def build_message(payload: dict[str, Any]) -> aio_pika.Message:
    envelope, trace_headers = split_trace_context(payload)
    return aio_pika.Message(
        body=orjson.dumps(envelope),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(payload["event_id"]),
        type=str(payload["event_type"]),
        timestamp=datetime.now(UTC),
        headers={"producer": str(payload.get("producer", "")), **trace_headers},
    )


@dataclass(frozen=True)
class RelayRound:
    """What one round did: events claimed from the outbox, and how many the broker confirmed."""

    claimed: int
    published: int

    @property
    def failed(self) -> bool:
        return self.published < self.claimed


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        broker: Broker,
        settings: ServiceSettings,
        wakeup: OutboxWakeup | None = None,
    ) -> None:
        self.engine = engine  # Core, not an ORM session: a round is two statements, no objects
        self.outbox = outbox
        self.broker = broker
        self.settings = settings
        self.wakeup = wakeup or OutboxWakeup()
        self._task: asyncio.Task[None] | None = None
        self._last_gauge = 0.0
        t = outbox
        # Claim the oldest unpublished rows no other relay holds, and mark them, in one round trip.
        batch = (
            select(t.c.event_id)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.created_at)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True)
        )
        self._claim = (
            update(t)
            .where(t.c.event_id.in_(batch.scalar_subquery()))
            .values(published_at=func.now())
            .returning(t.c.event_id, t.c.event_type, t.c.payload, t.c.created_at)
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self.wakeup.clear()  # a commit from here on wakes the next round
            done = await self._round()
            if done is None or done.failed:  # the broker or the database is away: retry on the clock
                await asyncio.sleep(self.settings.outbox_poll_interval)
            elif done.claimed < BATCH_SIZE:
                await self.wakeup.wait(self.settings.outbox_poll_interval)

    async def _round(self) -> RelayRound | None:
        try:
            await self.broker.ready.wait()
            done = await self.publish_pending()
            await self._update_gauges()
        except Exception as exc:  # keep relaying whatever one round hit
            logger.warning("outbox relay round failed: %s", type(exc).__name__)
            return None
        return done

    async def publish_pending(self) -> RelayRound:
        """Publish one batch of unpublished events, all at once; keep those the broker confirmed.

        The batch is claimed and marked published in one statement, inside a transaction
        that commits only after the confirms: a crash before that leaves every row as it was.
        An event the broker did not confirm is unmarked (``attempts`` counts it) for a later round.
        """
        if not self.broker.is_connected:  # claim nothing while it reconnects
            raise ConnectionError("RabbitMQ is not connected")
        async with self.engine.begin() as connection:
            rows = sorted((await connection.execute(self._claim)).all(), key=lambda row: row.created_at)
            if not rows:
                return RelayRound(0, 0)
            outcomes = await asyncio.gather(
                *(self.broker.publish(build_message(row.payload), row.event_type) for row in rows),
                return_exceptions=True,
            )
            await self._unmark_failures(connection, rows, outcomes)
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome is None:
                EVENTS_PUBLISHED.labels(self.settings.service_name, row.event_type).inc()
        return RelayRound(len(rows), outcomes.count(None))

    async def _unmark_failures(
        self, connection: AsyncConnection, rows: Sequence[Any], outcomes: list[Any]
    ) -> None:
        failed = [(row, exc) for row, exc in zip(rows, outcomes, strict=True) if exc is not None]
        if not failed:
            return
        t = self.outbox
        error = type(failed[0][1]).__name__
        await connection.execute(
            update(t)
            .where(t.c.event_id.in_([row.event_id for row, _ in failed]))
            .values(published_at=None, attempts=t.c.attempts + 1, last_error=error)
        )
        logger.warning("publishing %d events failed: %s", len(failed), error)

    async def _update_gauges(self) -> None:
        now = time.monotonic()
        if now - self._last_gauge < 5.0:
            return
        self._last_gauge = now
        t = self.outbox
        async with self.engine.connect() as connection:
            count, oldest = (
                await connection.execute(
                    select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
                )
            ).one()
        OUTBOX_BACKLOG.labels(self.settings.service_name).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.settings.service_name).set(age)
