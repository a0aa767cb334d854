"""The transactional outbox and the consumers' processed-event ledger.

An event row is inserted in the same transaction as the state change that
caused it; the relay publishes it only after that transaction committed.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.events.envelope import EventEnvelope
from servicekit.tracing import with_trace_context


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table in the service's schema."""
    return Table(
        "outbox",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Index("ix_outbox_unpublished", "created_at", postgresql_where=text("published_at IS NULL")),
        # Housekeeping finds the published rows past their retention without a table scan.
        Index("ix_outbox_published", "published_at", postgresql_where=text("published_at IS NOT NULL")),
    )


def processed_events_table(metadata: MetaData) -> Table:
    """Event ids a consumer has already handled (its idempotency ledger)."""
    return Table(
        "processed_events",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_processed_events_processed_at", "processed_at"),  # for housekeeping, as above
    )


async def add_event(session: AsyncSession, outbox: Table, event: EventEnvelope) -> None:
    """Write ``event`` to the outbox inside the caller's transaction."""
    await session.execute(
        insert(outbox).values(
            event_id=event.event_id,
            event_type=event.event_type,
            payload=with_trace_context(event.model_dump(mode="json")),
        )
    )
