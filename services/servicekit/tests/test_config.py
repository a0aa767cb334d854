from __future__ import annotations

import pytest
from pydantic import ValidationError

from servicekit.config import ServiceSettings

STRONG = {
    "jwt_secret": "a-strong-production-secret-of-48-characters-xyz",
    "internal_token": "another-strong-production-token",
    "database_url": "postgresql+asyncpg://svc:real-password@db:5432/moviebooking",
}


def test_production_refuses_every_dev_default() -> None:
    with pytest.raises(ValidationError) as caught:
        ServiceSettings(environment="production")
    message = str(caught.value)
    for name in ("JWT_SECRET", "INTERNAL_TOKEN", "DATABASE_URL"):
        assert name in message
    assert "dev-only" not in message  # the error names settings, never their values


def test_production_refuses_a_short_jwt_secret() -> None:
    with pytest.raises(ValidationError, match="shorter than 32"):
        ServiceSettings(environment="production", **{**STRONG, "jwt_secret": "short"})


def test_production_starts_with_real_secrets() -> None:
    settings = ServiceSettings(environment="production", **STRONG)
    assert settings.environment == "production"


def test_development_keeps_its_safe_defaults() -> None:
    assert ServiceSettings().jwt_algorithm == "HS256"


def test_secrets_do_not_show_in_repr() -> None:
    settings = ServiceSettings(**STRONG)
    assert "real-password" not in repr(settings) and "a-strong-production" not in repr(settings)


def test_dedupe_records_are_kept_at_least_a_day() -> None:
    with pytest.raises(ValidationError, match="processed_events_retention_seconds"):
        ServiceSettings(processed_events_retention_seconds=3600)


def test_dedupe_records_must_outlive_the_consumers_retries() -> None:
    # 25 attempts from 500 ms double up to 500 ms * (2**24 - 1): about 97 days in .retry queues.
    with pytest.raises(ValidationError, match="must exceed the consumers' retry back-off"):
        ServiceSettings(consumer_max_attempts=25)
    assert ServiceSettings(consumer_max_attempts=25, processed_events_retention_seconds=100 * 86400)


def test_published_events_are_not_kept_longer_than_their_dedupe_records() -> None:
    with pytest.raises(ValidationError, match="must not exceed PROCESSED_EVENTS_RETENTION_SECONDS"):
        ServiceSettings(outbox_retention_seconds=15 * 86400)


@pytest.mark.parametrize("listed", ["", "10.0.0.5:26379", "a:26379,b:26379, c.example:26380"])
def test_sentinels_are_a_list_of_host_and_port(listed: str) -> None:
    assert ServiceSettings(redis_sentinels=listed).redis_sentinels == listed


@pytest.mark.parametrize("listed", ["sentinel", "a:26379,", "a:port", "a:26379;b:26379"])
def test_a_malformed_sentinel_list_is_refused(listed: str) -> None:
    with pytest.raises(ValidationError, match="redis_sentinels"):
        ServiceSettings(redis_sentinels=listed)
