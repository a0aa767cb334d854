"""Alembic environment of auth-service (schema ``auth``)."""

from auth_service.config import AuthSettings
from auth_service.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, AuthSettings())
