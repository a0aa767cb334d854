"""tickets: one per seat of a confirmed booking; bookings keep their theater, its address and the end

Revision ID: 0004_tickets
Revises: 0003_time_zone
Create Date: 2026-12-05 00:00:00

The new bookings columns are nullable without a default: no rewrite of the table, no long
lock. Bookings made before them have none (see booking_service.tickets for what that means
at the door). The tickets table is new and empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_tickets"
down_revision: str | None = "0003_time_zone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_BOOKING_COLUMNS = (
    sa.Column("theater_id", sa.UUID(), nullable=True),
    sa.Column("theater_address", sa.String(length=300), nullable=True),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
)


def upgrade() -> None:
    for column in NEW_BOOKING_COLUMNS:
        op.add_column("bookings", column, schema="booking")
    op.create_table(
        "tickets",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("showtime_id", sa.UUID(), nullable=False),
        sa.Column("seat_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="valid", nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("admitted_by", sa.UUID(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('valid', 'admitted', 'void')", name=op.f("ck_tickets_status")),
        sa.CheckConstraint(
            "status <> 'admitted' OR (admitted_at IS NOT NULL AND admitted_by IS NOT NULL)",
            name=op.f("ck_tickets_admission_recorded"),
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.bookings.id"],
            name=op.f("fk_tickets_booking_id_bookings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_tickets")),
        sa.UniqueConstraint("booking_id", "seat_id", name=op.f("uq_tickets_booking_id_seat_id")),
        schema="booking",
    )


def downgrade() -> None:
    op.drop_table("tickets", schema="booking")
    for column in reversed(NEW_BOOKING_COLUMNS):
        op.drop_column("bookings", column.name, schema="booking")
