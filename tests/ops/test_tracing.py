"""servicekit.tracing: off by default; when on, one trace from a request through an event to its consumer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from servicekit import tracing

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"

# Runs in a fresh interpreter: tracing patches httpx/Redis process-wide, which must not leak into the suite.
PROBE = """
import asyncio, json, sys
from fastapi import APIRouter
from opentelemetry import trace
from servicekit import tracing
from servicekit.app import ServiceSpec, build_app
from servicekit.config import ServiceSettings
from servicekit.testing import app_client

router = APIRouter()

@router.get("/probe")
async def probe() -> dict:
    return tracing.with_trace_context({"event_id": "e-1", "event_type": "booking.confirmed"})

async def main() -> None:
    settings = ServiceSettings(service_name="trace-probe", events_enabled=False)
    spec = ServiceSpec(title="probe", description="probe", routers=[router], uses_broker=False)
    async with app_client(build_app(settings, spec)) as client:
        stored = (await client.get("/probe", headers={"traceparent": sys.argv[1]})).json()
    envelope, headers = tracing.split_trace_context(stored)
    with tracing.consumer_span(headers, "booking.confirmed", "notification-service.events"):
        consumer = format(trace.get_current_span().get_span_context().trace_id, "032x")
    trace.get_tracer_provider().force_flush()
    outcome = {"stored": stored, "envelope": envelope, "headers": headers, "consumer": consumer}
    print("RESULT " + json.dumps(outcome))

asyncio.run(main())
"""


class Collector(BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector that keeps what it receives."""

    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture()
def collector() -> Iterator[str]:
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tracing.ENDPOINT_VARIABLE, raising=False)
    assert not tracing.tracing_enabled()
    payload = {"event_id": "e-1"}
    assert tracing.with_trace_context(payload) == payload
    with tracing.consumer_span({"traceparent": TRACEPARENT}, "booking.confirmed", "q"):
        pass
    envelope, headers = tracing.split_trace_context(
        {"event_id": "e-1", "_trace": {"traceparent": TRACEPARENT}}
    )
    assert (envelope, headers) == ({"event_id": "e-1"}, {"traceparent": TRACEPARENT})


def test_one_trace_from_request_through_outbox_to_consumer(collector: str) -> None:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, TRACEPARENT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    outcome = json.loads(line.removeprefix("RESULT "))
    assert TRACE_ID in outcome["stored"]["_trace"]["traceparent"]
    assert "_trace" not in outcome["envelope"]
    assert TRACE_ID in outcome["headers"]["traceparent"]
    assert outcome["consumer"] == TRACE_ID
    exported = [body for path, body in Collector.received if path == "/v1/traces"]
    assert any(bytes.fromhex(TRACE_ID) in body for body in exported), Collector.received
