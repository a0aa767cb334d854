"""The request middleware before and after its split into three parts (issue 17), in-process.

    .venv/bin/python scripts/benchmark/middleware_split.py [--requests 20000] [--rounds 2]

Calls a tiny FastAPI app (servicekit's error handlers, one JSON route with a path parameter)
the way uvicorn does (raw ASGI on uvloop, a fresh scope per request, the gateway's
X-Request-ID) under each middleware stack:

    none      the app alone: the floor
    before    the one 37-line middleware of before the split (read from git at 8e795d7)
    after     servicekit's three parts (``install_request_middleware``)
    split     the same three, but the metrics part calling ``labels()`` per request, as before
    context   RequestContextMiddleware alone  (request id, log context)
    metrics   RequestMetricsMiddleware alone  (latency and count by route template)
    error     InternalErrorMiddleware alone   (the last-resort JSON 500)

Each stack warms up, then answers ``--requests`` requests; the stacks take turns, in reverse
order every other round, so drift on a shared machine falls on all of them. Prints the CPU
time of this process per request (µs): per stack the median and the least of its runs, each
with its excess over the floor (what the middleware costs), and the runs. On a busy machine the
least is the steadier figure (other processes only ever add to it): many short runs
(``--requests 2000 --rounds 40``) give it a better chance.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Scope

from servicekit.config import ServiceSettings
from servicekit.errors import install_error_handlers
from servicekit.metrics import HTTP_LATENCY, HTTP_REQUESTS
from servicekit.middleware import (
    InternalErrorMiddleware,
    RequestContextMiddleware,
    RequestMetricsMiddleware,
    install_request_middleware,
)

BEFORE_COMMIT = "8e795d76c064ecee82b248bb4f092a1d838acd97"
ROOT = Path(__file__).resolve().parents[2]


def before_the_split() -> type:
    """The one middleware of before the split, read from the git history (not a copy that
    could drift from what ran)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:services/servicekit/servicekit/middleware.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("middleware_before_the_split")
    exec(compile(source, f"middleware.py@{BEFORE_COMMIT[:7]}", "exec"), module.__dict__)
    middleware: type = module.RequestContextMiddleware
    return middleware


class LabelsEveryRequest(RequestMetricsMiddleware):
    """The metrics part as first split: ``labels()`` on every request, as before the split."""

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        path = getattr(scope.get("route"), "path", None)
        route = path if isinstance(path, str) else "unmatched"
        if route != "/metrics":
            method = scope["method"]
            HTTP_LATENCY.labels(self.service, method, route).observe(seconds)
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()


def split_with_labels_every_request(app: FastAPI) -> None:
    app.add_middleware(InternalErrorMiddleware)
    app.add_middleware(LabelsEveryRequest, service=SERVICE)
    app.add_middleware(RequestContextMiddleware)


SERVICE = "bench"
STACKS: dict[str, Callable[[FastAPI], None]] = {
    "none": lambda app: None,
    "before": lambda app: app.add_middleware(before_the_split(), service=SERVICE),
    "after": lambda app: install_request_middleware(app, SERVICE),
    "split": split_with_labels_every_request,
    "context": lambda app: app.add_middleware(RequestContextMiddleware),
    "metrics": lambda app: app.add_middleware(RequestMetricsMiddleware, service=SERVICE),
    "error": lambda app: app.add_middleware(InternalErrorMiddleware),
}


def tiny_app(stack: str) -> FastAPI:
    app = FastAPI()
    app.state.settings = ServiceSettings()
    install_error_handlers(app)
    STACKS[stack](app)

    @app.get("/showtimes/{showtime_id}")
    async def showtime(showtime_id: uuid.UUID) -> dict[str, str]:
        return {"id": str(showtime_id), "title": "Dune"}

    return app


PATH = f"/showtimes/{uuid.uuid4()}"
SCOPE: Scope = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.4"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": PATH,
    "raw_path": PATH.encode(),
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"booking"), (b"x-request-id", uuid.uuid4().hex.encode()), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}
REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


async def receive() -> Message:
    return REQUEST


async def send(message: Message) -> None:
    if message["type"] == "http.response.start" and message["status"] != 200:
        raise AssertionError(f"answered {message['status']}")


async def cpu_per_request(app: ASGIApp, requests: int) -> float:
    """CPU seconds of this process per request, over ``requests`` requests."""
    gc.collect()
    began = time.process_time()
    for _ in range(requests):
        await app(dict(SCOPE), receive, send)
    return (time.process_time() - began) / requests


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    apps = {name: tiny_app(name) for name in STACKS}
    for app in apps.values():
        await cpu_per_request(app, 2_000)  # warm-up (and the middleware stack is built)
    runs: dict[str, list[float]] = {name: [] for name in STACKS}
    for round_ in range(rounds):
        order = list(STACKS) if round_ % 2 == 0 else list(reversed(STACKS))
        for name in order:
            runs[name].append(await cpu_per_request(apps[name], requests) * 1e6)
    return runs


def report(runs: dict[str, list[float]], requests: int) -> None:
    floors = {"median": statistics.median(runs["none"]), "min": min(runs["none"])}
    sys.stdout.write(f"CPU µs per request, {requests} requests per run\n")
    sys.stdout.write(f"{'stack':<8} {'median':>7} {'over none':>10} {'min':>7} {'over none':>10}   runs\n")
    for name, values in runs.items():
        median, least = statistics.median(values), min(values)
        listed = " ".join(f"{v:.1f}" for v in values) if len(values) <= 8 else f"({len(values)})"
        sys.stdout.write(
            f"{name:<8} {median:7.1f} {median - floors['median']:+10.1f} "
            f"{least:7.1f} {least - floors['min']:+10.1f}   {listed}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each stack, alternated")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # the services run on uvloop; without it the figures are asyncio's
        runs = asyncio.run(measure(args.requests, args.rounds))
    else:
        runs = uvloop.run(measure(args.requests, args.rounds))
    report(runs, args.requests)


if __name__ == "__main__":
    main()
