"""Alembic environment of payment-service (schema ``payment``)."""

from payment_service.config import PaymentSettings
from payment_service.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, PaymentSettings())
