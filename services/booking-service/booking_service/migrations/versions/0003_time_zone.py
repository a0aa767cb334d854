"""time zone: a booking keeps its theater's IANA zone, so its mails show local time

Revision ID: 0003_time_zone
Revises: 0002_housekeeping
Create Date: 2026-12-04 00:00:00

A nullable column without a default: no rewrite of the table, no long lock. Bookings made
before it have none (their mails show UTC, as before).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_time_zone"
down_revision: str | None = "0002_housekeeping"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("bookings", sa.Column("time_zone", sa.String(length=64), nullable=True), schema="booking")


def downgrade() -> None:
    op.drop_column("bookings", "time_zone", schema="booking")
