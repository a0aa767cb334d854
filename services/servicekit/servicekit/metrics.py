"""Prometheus metrics shared by every service, and the /metrics endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route template, method and status",
    ["service", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template",
    ["service", "method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ADMISSION_WAITING = Gauge(
    "http_requests_waiting_for_admission",
    "Requests queued for a slot under MAX_CONCURRENT_REQUESTS",
    ["service"],
)
ADMISSION_REFUSED = Counter(
    "http_requests_refused_overloaded_total",
    "Requests answered 503 because no slot freed up within ADMISSION_TIMEOUT_SECONDS",
    ["service"],
)
OUTBOX_BACKLOG = Gauge("outbox_backlog_events", "Outbox events not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox event",
    ["service"],
)
HOUSEKEEPING_ROWS = Gauge(
    "housekeeping_table_rows",
    "Rows in a table the housekeeping pass prunes, by state where it matters (counted each pass)",
    ["service", "table", "state"],
)
HOUSEKEEPING_PRUNED = Counter(
    "housekeeping_pruned_rows_total", "Rows deleted by the housekeeping pass", ["service", "table"]
)
HOUSEKEEPING_PASSES = Counter(
    "housekeeping_passes_total",
    "Housekeeping passes by outcome (succeeded, failed: a table could not be pruned or counted)",
    ["service", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "events_published_total", "Events published from the outbox", ["service", "event_type"]
)
EVENTS_CONSUMED = Counter(
    "events_consumed_total",
    "Events handled by a consumer, by outcome (processed, duplicate, retried, dead_lettered)",
    ["service", "event_type", "outcome"],
)
CONSUMER_LAG = Gauge(
    "consumer_queue_messages", "Messages waiting in a consumer's queue", ["service", "queue"]
)
BREAKER_STATE = Gauge(
    "circuit_breaker_state",
    "Circuit breaker state (0 closed, 1 half-open, 2 open)",
    ["service", "target"],
)


def metrics_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
