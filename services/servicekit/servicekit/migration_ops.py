"""Migration steps every service shares (called from its Alembic revisions).

The housekeeping indexes are built CONCURRENTLY, outside the migration's transaction:
the tables may already be large (nothing pruned them before), and a plain CREATE INDEX
would block every write of an event while it runs. An interrupted build leaves an
INVALID index behind: drop it (DROP INDEX CONCURRENTLY <schema>.<name>) and run the
migration again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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
