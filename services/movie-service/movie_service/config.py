"""movie-service settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from servicekit.config import DEV_DATABASE_PASSWORD, ServiceSettings


class MovieSettings(ServiceSettings):
    service_name: str = "movie-service"
    db_schema: str = "movie"
    database_url: SecretStr = SecretStr(
        f"postgresql+asyncpg://movie_service:{DEV_DATABASE_PASSWORD}@127.0.0.1:5432/moviebooking"
    )

    booking_service_url: str = "http://127.0.0.1:8003"
    seed_demo_data: bool = True

    # Minutes an auditorium stays closed after a film ends, before the next showtime may start.
    cleaning_minutes: int = Field(default=15, ge=0, le=240)
    # How long the seat statuses read from booking are reused (the seat map may lag by at most 1 s).
    seat_status_cache_seconds: float = Field(default=1.0, ge=0, le=1.0)
    # Memory budget (estimated) of the rendered seat-map layouts kept per process.
    seat_map_cache_max_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    catalog_cache_seconds: int = Field(default=300, ge=1)
    # Lists that depend on "now" (upcoming showtimes) are cached for a shorter time.
    upcoming_cache_seconds: int = Field(default=30, ge=1)
