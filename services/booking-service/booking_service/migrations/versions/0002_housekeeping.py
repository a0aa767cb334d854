"""housekeeping: indexes to find published outbox rows and old dedupe records past their retention

Revision ID: 0002_housekeeping
Revises: 0001
Create Date: 2026-12-01 00:00:00

Built CONCURRENTLY, outside the migration's transaction: the tables may already be
large (nothing pruned them before), and a plain CREATE INDEX would block every write
of an event while it runs. An interrupted build leaves an INVALID index behind: drop
it (DROP INDEX CONCURRENTLY <schema>.<name>) and run the migration again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_housekeeping"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_outbox_published",
            "outbox",
            ["published_at"],
            unique=False,
            schema="booking",
            postgresql_where=sa.text("published_at IS NOT NULL"),
            postgresql_concurrently=True,
        )
        op.create_index(
            "ix_processed_events_processed_at",
            "processed_events",
            ["processed_at"],
            unique=False,
            schema="booking",
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_outbox_published",
            table_name="outbox",
            schema="booking",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.drop_index(
            "ix_processed_events_processed_at",
            table_name="processed_events",
            schema="booking",
            postgresql_concurrently=True,
            if_exists=True,
        )
