"""Admission control: at most ``MAX_CONCURRENT_REQUESTS`` requests of a process run at once.

A service's requests share one event loop and one connection pool with its own background
work: the outbox relay and the event consumers. With 64 requests in flight every loop cycle is
long and the pool's queue deep, and an event waits behind all of them (measured: payment's
relay claimed a committed ``payment.completed`` 2.4 s after its commit at 64 clients, and
booking's consumer took another 1.3 s). A request waiting here for its turn costs the loop
nothing, so a cap keeps the cycle short and leaves connections free for the background work;
throughput holds while the cap is above what the CPU can run at once. A request that cannot
get in within ``ADMISSION_TIMEOUT_SECONDS`` is answered 503 + Retry-After (load shedding, not a
hang). Health checks and metrics are never held back.
"""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.config import ServiceSettings
from servicekit.errors import document_error, error_json
from servicekit.metrics import ADMISSION_REFUSED, ADMISSION_WAITING

NEVER_HELD_BACK = ("/health", "/metrics")
OVERLOADED_DESCRIPTION = (
    "Too many requests in progress (service_overloaded), or a dependency is down; retry after Retry-After"
)


def install_admission_limit(app: FastAPI, settings: ServiceSettings) -> None:
    """Add the limit, and list its 503 on every operation it can refuse (all but probes and scrapes)."""
    app.add_middleware(
        AdmissionLimit,
        service=settings.service_name,
        limit=settings.max_concurrent_requests,
        timeout_seconds=settings.admission_timeout_seconds,
    )
    if settings.max_concurrent_requests > 0:
        document_error(
            app, 503, OVERLOADED_DESCRIPTION, lambda path, _op: not path.startswith(NEVER_HELD_BACK)
        )


class AdmissionLimit:
    """Pure ASGI: a FIFO semaphore around the app for every request but probes and scrapes."""

    def __init__(self, app: ASGIApp, service: str, limit: int, timeout_seconds: float) -> None:
        self.app = app
        self.service = service
        self.limit = limit
        self.timeout_seconds = timeout_seconds
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.limit <= 0 or scope["path"].startswith(NEVER_HELD_BACK):
            await self.app(scope, receive, send)
            return
        slots = self._slots_of_this_loop()
        if not slots.locked():
            await slots.acquire()  # a free slot: taken at once, no suspension
        elif not await self._wait_for_a_slot(slots):
            ADMISSION_REFUSED.labels(self.service).inc()
            await _overloaded()(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()

    async def _wait_for_a_slot(self, slots: asyncio.Semaphore) -> bool:
        """Queue for a slot (it is held on return True), at most ``timeout_seconds``."""
        waiting = ADMISSION_WAITING.labels(self.service)
        waiting.inc()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await slots.acquire()
        except TimeoutError:
            return False
        finally:
            waiting.dec()
        return True

    def _slots_of_this_loop(self) -> asyncio.Semaphore:
        # A semaphore belongs to the loop it first waited on; tests run an app on several loops.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.limit), loop
        return self._slots


def _overloaded() -> ASGIApp:
    return error_json(
        503,
        "service_overloaded",
        "Too many requests are in progress; retry shortly",
        headers={"Retry-After": "1"},
    )
