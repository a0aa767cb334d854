"""Migration steps every service shares (called from its Alembic revisions).

The tables of ``servicekit.events`` (the outbox, the consumers' dedupe ledger) are created
by the services' initial revisions through :func:`create_outbox_table` and
:func:`create_processed_events_table`. Those revisions have run on every database: these
functions must go on creating exactly what they created then. A change to these tables is
a new revision, never an edit here.

The housekeeping indexes are built CONCURRENTLY, outside the migration's transaction:
the tables may already be large (nothing pruned them before), and a plain CREATE INDEX
would block every write of an event while it runs. An interrupted build leaves an
INVALID index behind: drop it (DROP INDEX CONCURRENTLY <schema>.<name>) and run the
migration again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

UNPUBLISHED = sa.text("published_at IS NULL")


def create_outbox_table(schema: str) -> None:
    """The transactional outbox and the relay's index of unpublished rows."""
    op.create_table(
        "outbox",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_outbox")),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["created_at"], schema=schema, postgresql_where=UNPUBLISHED
    )


def drop_outbox_table(schema: str) -> None:
    op.drop_index("ix_outbox_unpublished", table_name="outbox", schema=schema, postgresql_where=UNPUBLISHED)
    op.drop_table("outbox", schema=schema)


def create_processed_events_table(schema: str) -> None:
    """The consumers' dedupe ledger: one row per (event, consumer) handled."""
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("event_id", "consumer", name=op.f("pk_processed_events")),
        schema=schema,
    )


def drop_processed_events_table(schema: str) -> None:
    op.drop_table("processed_events", schema=schema)


# (index, table, column, partial condition): what servicekit.events' tables declare.
HOUSEKEEPING_INDEXES = (
    ("ix_outbox_published", "outbox", "published_at", "published_at IS NOT NULL"),
    ("ix_processed_events_processed_at", "processed_events", "processed_at", None),
)


Tables = tuple[str, ...]


def create_housekeeping_indexes(schema: str, tables: Tables = ("outbox", "processed_events")) -> None:
    """The indexes housekeeping finds published outbox rows and old dedupe records by
    (of the shared tables the service has)."""
    with op.get_context().autocommit_block():
        for name, table, column, where in HOUSEKEEPING_INDEXES:
            if table not in tables:
                continue
            op.create_index(
                name,
                table,
                [column],
                unique=False,
                schema=schema,
                postgresql_where=sa.text(where) if where else None,
                postgresql_concurrently=True,
            )


def drop_housekeeping_indexes(schema: str, tables: Tables = ("outbox", "processed_events")) -> None:
    with op.get_context().autocommit_block():
        for name, table, _, _ in HOUSEKEEPING_INDEXES:
            if table not in tables:
                continue
            op.drop_index(name, table_name=table, schema=schema, postgresql_concurrently=True, if_exists=True)
