"""the payment reconciler: its scan index, and voids in the simulated provider's ledger

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_CHECK = "ck_simulated_provider_ledger_operation"


def upgrade() -> None:
    op.create_index(
        "ix_payments_pending_updated",
        "payments",
        ["updated_at"],
        unique=False,
        schema="payment",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_constraint(op.f(LEDGER_CHECK), "simulated_provider_ledger", type_="check", schema="payment")
    op.create_check_constraint(
        op.f(LEDGER_CHECK),
        "simulated_provider_ledger",
        "operation IN ('charge', 'refund', 'void')",
        schema="payment",
    )


def downgrade() -> None:
    op.execute("DELETE FROM payment.simulated_provider_ledger WHERE operation = 'void'")
    op.drop_constraint(op.f(LEDGER_CHECK), "simulated_provider_ledger", type_="check", schema="payment")
    op.create_check_constraint(
        op.f(LEDGER_CHECK), "simulated_provider_ledger", "operation IN ('charge', 'refund')", schema="payment"
    )
    op.drop_index("ix_payments_pending_updated", table_name="payments", schema="payment")
