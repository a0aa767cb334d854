"""payment-service settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from servicekit.config import DEV_DATABASE_PASSWORD, ServiceSettings

ONE_DAY_SECONDS = 24 * 60 * 60


class PaymentSettings(ServiceSettings):
    service_name: str = "payment-service"
    db_schema: str = "payment"
    database_url: SecretStr = SecretStr(
        f"postgresql+asyncpg://payment_service:{DEV_DATABASE_PASSWORD}@127.0.0.1:5432/moviebooking"
    )

    booking_service_url: str = "http://127.0.0.1:8003"

    # Idempotency records are kept at least a day (docs/contracts.md: retries within 24 h replay).
    idempotency_ttl_seconds: int = Field(default=ONE_DAY_SECONDS, ge=ONE_DAY_SECONDS)
    # The lease of a request in progress: a key held, or a payment left pending, longer than
    # this is presumed crashed; a retry with the key may resume it, the reconciler resolves it.
    idempotency_lock_seconds: float = Field(default=60.0, gt=0)

    # A booking stays payable through this many declined cards; the last one ends it.
    max_declines_per_booking: int = Field(default=3, ge=1, le=20)

    provider_max_attempts: int = Field(default=3, ge=1, le=10)
    provider_retry_base_ms: int = Field(default=200, ge=1)

    # How often each replica looks for payments pending past their lease, and how many a pass takes.
    reconciler_interval_seconds: float = Field(default=15.0, gt=0)
    reconciler_batch_size: int = Field(default=100, ge=1, le=1000)
