"""Alembic environment of notification-service (schema ``notification``)."""

from notification_service.config import NotificationSettings
from notification_service.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, NotificationSettings())
