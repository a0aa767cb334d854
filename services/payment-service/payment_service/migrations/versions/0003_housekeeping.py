"""housekeeping: indexes to find published outbox rows and old dedupe records past their retention

Revision ID: 0003_housekeeping
Revises: 0002
Create Date: 2026-12-03 00:00:00

Built concurrently (see servicekit.migration_ops).
"""

from collections.abc import Sequence

from servicekit.migration_ops import create_housekeeping_indexes, drop_housekeeping_indexes

revision: str = "0003_housekeeping"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_housekeeping_indexes("payment")


def downgrade() -> None:
    drop_housekeeping_indexes("payment")
