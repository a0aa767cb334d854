"""OpenTelemetry tracing, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

When on (compose sets it to Jaeger's OTLP/HTTP port), a service exports spans for
its FastAPI requests, httpx calls, SQLAlchemy statements and Redis commands, and the
trace context rides along with every event: ``add_event`` stores the current
context beside the envelope in the outbox row (key ``_trace``), the relay sends it
as message headers (``traceparent``), and the consumer handles the event in a span
continuing that trace. One trace so follows book -> pay -> event -> confirm -> mail.
Log lines carry the ``trace_id`` (servicekit.logging). Standard OTEL_* variables
(``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ...) are honoured by the SDK.

When off, nothing is imported or patched and every helper here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACE_KEY = "_trace"


def tracing_enabled() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE))


def _install_provider(service_name: str) -> None:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # one provider per process (several apps may be built in one process)
    name = os.environ.get("OTEL_SERVICE_NAME", service_name)
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def instrument_app(app: FastAPI, service_name: str) -> None:
    """Server spans for ``app``, client spans for httpx and Redis (process-wide, once)."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _install_provider(service_name)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/health,/health/live,/health/ready,/metrics")
    for instrumentor in (HTTPXClientInstrumentor(), RedisInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def instrument_engine(engine: AsyncEngine) -> None:
    """A span per SQL statement on ``engine``."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)


def with_trace_context(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` plus the current trace context under ``_trace`` (unchanged when off or untraced)."""
    if not tracing_enabled():
        return payload
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {**payload, TRACE_KEY: carrier} if carrier else payload


def split_trace_context(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The envelope without ``_trace``, and the stored context as message headers."""
    body = {key: value for key, value in payload.items() if key != TRACE_KEY}
    carrier = payload.get(TRACE_KEY) or {}
    return body, {str(k): str(v) for k, v in carrier.items()}


@contextmanager
def consumer_span(headers: Mapping[str, Any] | None, event_type: str, consumer: str) -> Iterator[None]:
    """Handle a message inside a span that continues the trace its headers carry."""
    if not tracing_enabled():
        yield
        return
    from opentelemetry import propagate, trace

    context = propagate.extract({str(k): str(v) for k, v in (headers or {}).items()})
    tracer = trace.get_tracer("servicekit.events")
    attributes = {"messaging.system": "rabbitmq", "messaging.destination.name": consumer}
    with tracer.start_as_current_span(
        f"{event_type} process", context=context, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield
