"""The transactional outbox and the consumers' processed-event ledger.

An event row is inserted in the same transaction as the state change that
caused it; the relay publishes it only after that transaction committed.
That commit wakes the relay of this process at once (``OutboxWakeup``); its
poll only catches what no wake-up announced (rows of a process that died before
relaying them, rows a failed round left).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BindParameter,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from servicekit import hotsql
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


WAKEUP_KEY = "servicekit.outbox_wakeup"  # in the sessionmaker's info: whom a commit wakes
WRITTEN_KEY = "servicekit.outbox_written"  # in a session's info: this transaction wrote events


class OutboxWakeup:
    """Set when a transaction that wrote outbox rows has committed; the relay waits on it."""

    def __init__(self) -> None:
        self._written = asyncio.Event()

    def notify(self) -> None:
        """Outbox rows were just committed: publish them now rather than at the next poll."""
        self._written.set()

    def clear(self) -> None:
        self._written.clear()

    async def wait(self, at_most: float) -> None:
        """Until a commit notifies, or ``at_most`` seconds (the relay's safety-net poll)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._written.wait()


class OutboxSession(Session):
    """The services' session: a commit after ``add_event`` notifies the sessionmaker's wake-up."""


@event.listens_for(OutboxSession, "after_commit")
def _wake_relay(session: Session) -> None:
    if session.info.pop(WRITTEN_KEY, False) and (wakeup := session.info.get(WAKEUP_KEY)):
        wakeup.notify()


def outbox_row(event: EventEnvelope) -> dict[str, Any]:
    """The values of ``event``'s outbox row: the envelope as JSON, with the trace context."""
    payload = with_trace_context(event.model_dump(mode="json"))
    return {"event_id": event.event_id, "event_type": event.event_type, "payload": payload}


async def add_event(session: AsyncSession, outbox: Table, event: EventEnvelope) -> None:
    """Write ``event`` to the outbox inside the caller's transaction (its commit wakes the relay).

    Straight on asyncpg (servicekit.hotsql): one per event published, on every hot path.
    """
    sql = f"INSERT INTO {outbox.fullname} (event_id, event_type, payload) VALUES ($1, $2, $3)"
    await hotsql.execute(session, sql, *outbox_args(event))
    session.info[WRITTEN_KEY] = True


def outbox_args(event: EventEnvelope) -> tuple[uuid.UUID, str, str]:
    """``outbox_row(event)`` as a hot statement's arguments: id, type, payload as JSON text."""
    row = outbox_row(event)
    return row["event_id"], row["event_type"], orjson.dumps(row["payload"]).decode()


@dataclass(frozen=True)
class OutboxInsert:
    """The outbox insert as a part of a larger ``text()`` statement: a state change and its event
    in one round trip. ``sql`` goes in a CTE, ``bindparams`` on the statement, ``outbox_row(event)``
    among its parameters; after the commit, the caller notifies the relay (``OutboxWakeup``)."""

    sql: str
    bindparams: tuple[BindParameter[Any], ...]


def outbox_insert_per_row(source: str) -> OutboxInsert:
    """Insert the event once per row of ``source`` (a CTE of the same statement): no row, no event.

    The table name is unqualified: the service's engine resolves it in the service's schema.
    """
    sql = (
        "INSERT INTO outbox (event_id, event_type, payload) "
        f"SELECT :event_id, :event_type, :payload FROM {source}"
    )
    types = (bindparam("event_id", type_=UUID(as_uuid=True)), bindparam("payload", type_=JSONB))
    return OutboxInsert(sql, types)


def hot_outbox_insert_per_row(source: str, first: int, data: str | None = None) -> str:
    """``outbox_insert_per_row`` for a statement run by servicekit.hotsql: the event's id, type
    and payload are ``$first``, ``$first + 1`` and ``$first + 2`` (``outbox_args(event)``).

    ``data``, an SQL expression over ``source``'s columns giving a JSON object, replaces the
    envelope's ``data``: the event of a row that the same statement writes (its values are not
    known before). The envelope (event id, time, producer, trace context) is ``outbox_row``'s.
    """
    payload = f"${first + 2}::jsonb"
    if data is not None:
        payload = f"{payload} || jsonb_build_object('data', {data})"
    return (
        "INSERT INTO outbox (event_id, event_type, payload) "
        f"SELECT ${first}::uuid, ${first + 1}::text, {payload} FROM {source}"
    )
