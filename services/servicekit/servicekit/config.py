"""Settings read from the environment, with dev defaults refused in production."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from servicekit.events.cluster import parse_node_urls

DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"
DEV_INTERNAL_TOKEN = "dev-only-internal-token"
DEV_DATABASE_PASSWORD = "dev-only-db-password"
ONE_DAY_SECONDS = 24 * 60 * 60

Environment = Literal["development", "test", "production"]


class ServiceSettings(BaseSettings):
    """Settings every service shares; each service subclasses it with its own."""

    # hide_input_in_errors: a refused setting's error never echoes what was given (a URL
    # with its password, a secret).
    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True, hide_input_in_errors=True)

    service_name: str = "service"
    environment: Environment = "development"
    log_level: str = "INFO"

    database_url: SecretStr = SecretStr(
        f"postgresql+asyncpg://postgres:{DEV_DATABASE_PASSWORD}@127.0.0.1:5432/moviebooking"
    )
    db_schema: str = "public"
    # Set by measurement (docs/benchmarks.md, "Admission"): with MAX_CONCURRENT_REQUESTS at 8,
    # 6 + 2 per process is all a request burst plus the relay and the consumers use, and the
    # whole stack holds ~26 connections at full load (10 + 10 held 57-61, for no throughput).
    db_pool_size: int = Field(default=6, ge=1)
    db_max_overflow: int = Field(default=2, ge=0)
    db_pool_pre_ping: bool = Field(default=False, description="Ping before every checkout (a round trip)")
    db_pool_recycle_seconds: int = Field(default=1800, ge=-1, description="Replace older connections")
    # DATABASE_URL points at PgBouncer in transaction pooling mode (docs/operations.md, "Behind
    # PgBouncer"): no statement stays prepared past the message that runs it, and the schema
    # comes from the role's search_path. Off for a direct connection, which keeps its caches.
    db_behind_pgbouncer: bool = False
    # Requests of one process running at once; the rest queue for a slot (servicekit/admission.py:
    # a short loop and a free connection for the relay and the consumers). 0 turns it off.
    max_concurrent_requests: int = Field(default=8, ge=0)
    # A request that waits this long for a slot is answered 503 + Retry-After.
    admission_timeout_seconds: float = Field(default=10.0, gt=0)

    # The cyclic garbage collector (see servicekit/heap.py): objects alive once start-up is
    # done are frozen out of its passes, and a young collection waits for this many new
    # objects (Python's default, 700, collected ~100 times a second under load here).
    gc_freeze_after_startup: bool = True
    gc_gen0_threshold: int = Field(default=50_000, ge=1)

    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_prefix: str = "mb:"
    # Every Redis wait (connect, command, a free pooled connection) is bounded by this,
    # so an outage or a burst beyond the pool becomes a fast 503, never a hang.
    redis_timeout_seconds: float = Field(default=1.0, gt=0)
    redis_max_connections: int = Field(default=64, ge=1)
    # Redis Sentinel (docs/operations.md, "Redis failover"): "host:port,host:port" of the
    # sentinels; the client asks them for the master of REDIS_SENTINEL_MASTER and follows a
    # promotion. REDIS_URL then gives only the master's password and database number.
    redis_sentinels: str = Field(default="", pattern=r"^([^,:\s]+:\d{1,5})?(,\s*[^,:\s]+:\d{1,5})*$")
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: SecretStr | None = None

    # One AMQP URL, or the nodes of one cluster as a comma-separated list: the services
    # connect to the first node that answers and move to the next one when it is lost
    # (docs/operations.md, "RabbitMQ cluster").
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    # Consumer queues (main, .retry, .dlq) as quorum queues, replicated on the cluster's
    # nodes; off declares classic queues. Queues of the other type are migrated at start-up.
    rabbitmq_quorum_queues: bool = True
    # A quorum queue dead-letters a message delivered this many times without being settled
    # (each time, the consumer's process or connection died holding it): a poison message
    # that crashes the consumer stops coming back. Handler failures do not count (the
    # consumer settles those itself, through .retry).
    rabbitmq_delivery_limit: int = Field(default=20, ge=1)
    events_exchange: str = "booking_events"
    queue_prefix: str = ""
    events_enabled: bool = True
    # The relay publishes right after each commit that wrote the outbox (a wake-up); this poll
    # only catches rows no wake-up announced (a process that died before relaying, a failed
    # round, which is retried on this clock), so it bounds their delay, not the usual one.
    outbox_poll_interval: float = Field(default=1.0, gt=0)
    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_retry_base_ms: int = Field(default=500, ge=1)
    # Tests set this so their throw-away queues vanish from a shared broker.
    queue_expires_ms: int | None = None

    # Housekeeping (servicekit/housekeeping.py; docs/operations.md "What is kept how long"):
    # every interval, published outbox rows and dedupe records older than their retention
    # are deleted, at most a batch per statement. Unpublished outbox rows are never deleted.
    housekeeping_interval_seconds: float = Field(default=600.0, gt=0)
    housekeeping_batch_size: int = Field(default=1000, ge=1, le=100_000)
    outbox_retention_seconds: int = Field(default=3 * ONE_DAY_SECONDS, ge=3600)
    # A redelivered event is recognised only while its dedupe record exists: keep records
    # longer than a message can wait in a .retry or .dlq queue before it comes back, and
    # longer than the outbox keeps the event (re-publishing from the outbox stays safe).
    processed_events_retention_seconds: int = Field(default=14 * ONE_DAY_SECONDS, ge=ONE_DAY_SECONDS)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "movie-booking-auth"
    jwt_audience: str = "movie-booking"
    # How far in the future a token's `iat` may lie (clocks of issuer and verifier drift a
    # little); a token issued later than that is refused as forged or from a broken clock.
    jwt_clock_skew_seconds: int = Field(default=30, ge=0)

    internal_token: SecretStr = SecretStr(DEV_INTERNAL_TOKEN)
    http_timeout_seconds: float = Field(default=2.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=10.0, gt=0)

    @field_validator("rabbitmq_url")
    @classmethod
    def _rabbitmq_url_lists_amqp_nodes(cls, value: SecretStr) -> SecretStr:
        parse_node_urls(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _keep_dedupe_records_past_any_redelivery(self) -> ServiceSettings:
        kept = self.processed_events_retention_seconds
        if kept <= self.consumer_retry_window_seconds():
            raise ValueError(
                "PROCESSED_EVENTS_RETENTION_SECONDS must exceed the consumers' retry back-off "
                f"({self.consumer_retry_window_seconds():.0f} s): a retried copy of an event would "
                "outlive the record that marks it handled"
            )
        if self.outbox_retention_seconds > kept:
            raise ValueError(
                "OUTBOX_RETENTION_SECONDS must not exceed PROCESSED_EVENTS_RETENTION_SECONDS: "
                "an event re-published from the outbox must still find its dedupe records"
            )
        return self

    def consumer_retry_window_seconds(self) -> float:
        """The longest a failing message spends in ``.retry`` queues before it is dead-lettered."""
        return self.consumer_retry_base_ms * (2 ** (self.consumer_max_attempts - 1) - 1) / 1000

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        insecure = []
        if self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            insecure.append("JWT_SECRET")
        if len(self.jwt_secret.get_secret_value()) < 32:
            insecure.append("JWT_SECRET (shorter than 32 characters)")
        if self.internal_token.get_secret_value() == DEV_INTERNAL_TOKEN:
            insecure.append("INTERNAL_TOKEN")
        if DEV_DATABASE_PASSWORD in self.database_url.get_secret_value():
            insecure.append("DATABASE_URL")
        insecure.extend(self.insecure_production_fields())
        if insecure:
            raise ValueError(
                "refusing to start with development defaults in production: " + ", ".join(insecure)
            )
        return self

    def insecure_production_fields(self) -> list[str]:
        """Names of service-specific settings still at a dev default (override to add)."""
        return []
