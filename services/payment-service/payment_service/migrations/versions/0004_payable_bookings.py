"""payable bookings: booking.created kept locally, so a known booking is paid without a call to booking

Revision ID: 0004_payable_bookings
Revises: 0003_housekeeping
Create Date: 2026-12-03 14:00:00

A new, empty table: its index is built in the same transaction.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_payable_bookings"
down_revision: str | None = "0003_housekeeping"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payable_bookings",
        sa.Column("booking_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("user_email", sa.String(length=254), nullable=True),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("booking_id", name=op.f("pk_payable_bookings")),
        schema="payment",
    )
    op.create_index(
        op.f("ix_payment_payable_bookings_expires_at"),
        "payable_bookings",
        ["expires_at"],
        unique=False,
        schema="payment",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_payment_payable_bookings_expires_at"), table_name="payable_bookings", schema="payment"
    )
    op.drop_table("payable_bookings", schema="payment")
