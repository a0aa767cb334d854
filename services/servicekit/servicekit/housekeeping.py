"""Housekeeping: delete what the services keep only for a while, and count what is left.

What goes (docs/operations.md, "What is kept how long"): published outbox rows after
``OUTBOX_RETENTION_SECONDS`` (never an unpublished one), a consumer's dedupe records
after ``PROCESSED_EVENTS_RETENTION_SECONDS``, and whatever a service adds to its
``ServiceSpec.retained`` (auth's expired refresh tokens, payment's expired idempotency
records and ended payable bookings).

Every replica runs the same pass, uncoordinated: a batch is one statement,
``DELETE ... WHERE ctid IN (SELECT ctid ... LIMIT n FOR UPDATE SKIP LOCKED)``, so
replicas delete disjoint rows without waiting for each other and no lock outlives one
short statement. A pass that fails (the database away) is logged; the next one retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Delete, Table, delete, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.config import ServiceSettings
from servicekit.metrics import HOUSEKEEPING_PASSES, HOUSEKEEPING_PRUNED, HOUSEKEEPING_ROWS

logger = logging.getLogger("servicekit.housekeeping")
# The first pass comes within this long of start-up (at a random moment, so replicas
# started together do not prune in step), then one every HOUSEKEEPING_INTERVAL_SECONDS.
FIRST_PASS_WITHIN_SECONDS = 60.0


@dataclass(frozen=True)
class Retention:
    """What one table keeps: rows matching ``expired`` are pruned; rows are counted per ``states``."""

    name: str
    table: Table
    expired: ColumnElement[bool]
    states: Mapping[str, ColumnElement[bool]] = field(default_factory=dict)


def older_than(column: ColumnElement[datetime], seconds: float) -> ColumnElement[bool]:
    """``column`` lies more than ``seconds`` before the database's clock (one clock for all replicas)."""
    return column < func.now() - timedelta(seconds=seconds)


def outbox_retention(outbox: Table, settings: ServiceSettings) -> Retention:
    """Published events go after their retention; an unpublished one (NULL) is never older than anything."""
    published_at = outbox.c.published_at
    return Retention(
        "outbox",
        outbox,
        expired=older_than(published_at, settings.outbox_retention_seconds),
        states={"unpublished": published_at.is_(None), "published": published_at.is_not(None)},
    )


def processed_events_retention(processed: Table, settings: ServiceSettings) -> Retention:
    """Dedupe records go once no redelivery of their event can still arrive."""
    return Retention(
        "processed_events",
        processed,
        expired=older_than(processed.c.processed_at, settings.processed_events_retention_seconds),
    )


def prune_batch(retention: Retention, limit: int) -> Delete:
    """One batch: up to ``limit`` expired rows that no other transaction holds."""
    # By the row's address (a TID scan), whatever the table's key; the SELECT's row lock
    # keeps that address valid until the DELETE has run.
    ctid: ColumnElement[object] = literal_column("ctid")
    doomed = (
        select(ctid)
        .select_from(retention.table)
        .where(retention.expired)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .correlate(None)
    )
    return delete(retention.table).where(ctid.in_(doomed))


class Housekeeper:
    """Prunes expired rows in bounded batches and exports the tables' row counts."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        retentions: Sequence[Retention],
        settings: ServiceSettings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.retentions = list(retentions)
        self.settings = settings
        for outcome in ("succeeded", "failed"):  # both series exist from the start, for increase()
            HOUSEKEEPING_PASSES.labels(settings.service_name, outcome)

    async def run_forever(self) -> None:
        interval = self.settings.housekeeping_interval_seconds
        await asyncio.sleep(random.uniform(0, min(interval, FIRST_PASS_WITHIN_SECONDS)))
        while True:
            await self.run_pass()
            await asyncio.sleep(interval)

    async def run_pass(self) -> bool:
        """Prune and count every table; False when one failed (the next pass tries again)."""
        succeeded = True
        for retention in self.retentions:
            try:
                await self.prune(retention)
                await self.count(retention)
            except Exception as exc:  # the database may be away: log, carry on, retry next pass
                logger.warning("housekeeping of %s failed: %s", retention.name, type(exc).__name__)
                succeeded = False
        outcome = "succeeded" if succeeded else "failed"
        HOUSEKEEPING_PASSES.labels(self.settings.service_name, outcome).inc()
        return succeeded

    async def prune(self, retention: Retention) -> int:
        """Delete the expired rows, one transaction per batch; returns how many went."""
        batch_size = self.settings.housekeeping_batch_size
        statement = prune_batch(retention, batch_size)
        pruned = HOUSEKEEPING_PRUNED.labels(self.settings.service_name, retention.name)
        total = 0
        while True:
            async with self.sessionmaker() as session, session.begin():
                deleted = int(getattr(await session.execute(statement), "rowcount", 0) or 0)
            pruned.inc(deleted)
            total += deleted
            if deleted < batch_size:  # none left, or the rest is another replica's batch
                break
        if total:
            logger.info("pruned %d rows of %s", total, retention.name)
        return total

    async def count(self, retention: Retention) -> dict[str, int]:
        """Count the table's rows per state (one scan) and export them."""
        states = dict(retention.states) or {"": true()}
        query = select(*(func.count().filter(condition) for condition in states.values()))
        async with self.sessionmaker() as session:
            counts = (await session.execute(query.select_from(retention.table))).one()
        found = dict(zip(states, (int(n) for n in counts), strict=True))
        for state, rows in found.items():
            HOUSEKEEPING_ROWS.labels(self.settings.service_name, retention.name, state).set(rows)
        return found
