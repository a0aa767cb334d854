"""Alembic environment of movie-service (schema ``movie``)."""

from movie_service.config import MovieSettings
from movie_service.models import Base
from servicekit.migrations import run_migrations

run_migrations(Base.metadata, MovieSettings())
