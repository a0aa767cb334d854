"""The outbox relay: publishes committed events, persistent and confirmed, at least once.

Several replicas may run it at once: rows are claimed with FOR UPDATE SKIP LOCKED,
so each event is published by one relay; a crash between publish and mark means
a redelivery, which the consumers' event-id ledger absorbs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson
from pamqp.commands import Basic
from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.config import ServiceSettings
from servicekit.events.broker import Broker
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


class OutboxRelay:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox: Table,
        broker: Broker,
        settings: ServiceSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.outbox = outbox
        self.broker = broker
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._last_gauge = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.broker.ready.wait()
                published = await self.publish_pending()
                await self._update_gauges()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying whatever one round hit
                logger.warning("outbox relay round failed: %s", type(exc).__name__)
                published = 0
                await asyncio.sleep(1.0)
            if published < BATCH_SIZE:
                await asyncio.sleep(self.settings.outbox_poll_interval)

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        exchange = self.broker.exchange
        if exchange is None:
            return 0
        t = self.outbox
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(t.c.event_id, t.c.event_type, t.c.payload)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.created_at)
                    .limit(BATCH_SIZE)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            done = []
            for row in rows:
                try:
                    await self._publish_confirmed(exchange, row.payload, row.event_type)
                except Exception as exc:
                    await session.execute(
                        update(t)
                        .where(t.c.event_id == row.event_id)
                        .values(attempts=t.c.attempts + 1, last_error=type(exc).__name__)
                    )
                    logger.warning("publishing %s failed: %s", row.event_type, type(exc).__name__)
                    break
                done.append(row.event_id)
                EVENTS_PUBLISHED.labels(self.settings.service_name, row.event_type).inc()
            if done:
                await session.execute(update(t).where(t.c.event_id.in_(done)).values(published_at=func.now()))
        return len(done)

    async def _publish_confirmed(self, exchange: Any, payload: dict[str, Any], routing_key: str) -> None:
        """Publish and insist on the broker's Basic.Ack; anything else is a failure to retry.

        Not mandatory: an event nobody subscribes to (yet) is dropped by the topic
        exchange by design, and must not block the outbox.
        """
        if not self.broker.is_connected:
            raise ConnectionError("RabbitMQ is not connected")
        confirmation = await exchange.publish(
            build_message(payload), routing_key=routing_key, mandatory=False, timeout=10
        )
        if not isinstance(confirmation, Basic.Ack):
            raise ConnectionError(f"publish not confirmed: {type(confirmation).__name__}")

    async def _update_gauges(self) -> None:
        now = time.monotonic()
        if now - self._last_gauge < 5.0:
            return
        self._last_gauge = now
        t = self.outbox
        async with self.sessionmaker() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(t.c.created_at)).where(t.c.published_at.is_(None))
                )
            ).one()
        OUTBOX_BACKLOG.labels(self.settings.service_name).set(count)
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
        OUTBOX_OLDEST_AGE.labels(self.settings.service_name).set(age)
