"""auth-service settings."""

from __future__ import annotations

from pydantic import Field, SecretStr

from servicekit.config import DEV_DATABASE_PASSWORD, ServiceSettings

DEV_ADMIN_PASSWORD = "AdminDevPass123!"


class AuthSettings(ServiceSettings):
    service_name: str = "auth-service"
    db_schema: str = "auth"
    database_url: SecretStr = SecretStr(
        f"postgresql+asyncpg://auth_service:{DEV_DATABASE_PASSWORD}@127.0.0.1:5432/moviebooking"
    )

    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    # Per client address, across accounts: high, since many users can share one address (NAT).
    login_max_failures_per_ip: int = Field(default=100, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)

    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    argon2_parallelism: int = Field(default=4, ge=1)

    admin_email: str | None = "admin@moviebooking.local"
    admin_username: str | None = "admin"
    admin_password: SecretStr | None = SecretStr(DEV_ADMIN_PASSWORD)

    def insecure_production_fields(self) -> list[str]:
        if self.admin_password and self.admin_password.get_secret_value() == DEV_ADMIN_PASSWORD:
            return ["ADMIN_PASSWORD"]
        return []
