"""Alembic environment of booking-service (schema ``booking``)."""

from booking_service.config import BookingSettings
from booking_service.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, BookingSettings())
