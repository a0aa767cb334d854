"""notification-service settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from servicekit.config import DEV_DATABASE_PASSWORD, ServiceSettings


class NotificationSettings(ServiceSettings):
    service_name: str = "notification-service"
    db_schema: str = "notification"
    database_url: SecretStr = SecretStr(
        f"postgresql+asyncpg://notification_service:{DEV_DATABASE_PASSWORD}@127.0.0.1:5432/moviebooking"
    )
    # SMTP outages last minutes, not seconds: 1s, 2s, 4s ... 64s, then the dead-letter queue.
    consumer_max_attempts: int = Field(default=8, ge=1)
    consumer_retry_base_ms: int = Field(default=1000, ge=1)
    # Each message in flight holds two pooled connections (ledger + notification row).
    consumer_prefetch: int = Field(default=5, ge=1)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    smtp_start_tls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "Movie Booking <no-reply@moviebooking.local>"
    # SMTP connections kept open between mails (each carries one mail at a time; a mail
    # waits for a free one), and how long an idle one is kept (0: QUIT after every mail).
    smtp_pool_size: int = Field(default=4, ge=1, le=100)
    smtp_idle_seconds: float = Field(default=30.0, ge=0)

    sms_provider: Literal["log", "webhook"] = "log"
    sms_webhook_url: str | None = None
    sms_webhook_token: SecretStr | None = None

    def insecure_production_fields(self) -> list[str]:
        if self.sms_provider == "webhook" and not self.sms_webhook_url:
            return ["SMS_WEBHOOK_URL (required with SMS_PROVIDER=webhook)"]
        return []
