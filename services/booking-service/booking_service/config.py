"""booking-service settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from servicekit.config import DEV_DATABASE_PASSWORD, ServiceSettings


class BookingSettings(ServiceSettings):
    service_name: str = "booking-service"
    db_schema: str = "booking"
    database_url: SecretStr = SecretStr(
        f"postgresql+asyncpg://booking_service:{DEV_DATABASE_PASSWORD}@127.0.0.1:5432/moviebooking"
    )
    movie_service_url: str = "http://127.0.0.1:8002"

    hold_ttl_seconds: int = Field(default=300, ge=1, description="How long an unpaid hold lasts")
    # Sales close this long before a showtime starts (0: at the start); no hold outlives it.
    sales_close_minutes_before_start: int = Field(default=0, ge=0, le=24 * 60)
    # A confirmed booking can be cancelled (and is refunded) until this long before the start;
    # after that only an admin's refund at payment-service cancels it.
    cancellation_cutoff_minutes: int = Field(default=30, ge=0, le=7 * 24 * 60)
    # Staff admit a ticket from this long before its showtime starts (409 too_early before).
    doors_open_minutes_before_start: int = Field(default=60, ge=0, le=24 * 60)
    max_seats_per_booking: int = Field(default=10, ge=1)
    max_pending_bookings_per_user: int = Field(default=5, ge=1)
    showtime_cache_seconds: float = Field(default=120.0, ge=0, description="Showtime look-ups in Redis")
    showtime_local_cache_seconds: float = Field(default=10.0, ge=0, description="... and in the process")
    showtime_local_cache_max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=0, description="Memory budget of the process cache (estimated)"
    )
    sweeper_interval_seconds: float = Field(default=2.0, gt=0)
    sweeper_batch_size: int = Field(default=200, ge=1)
