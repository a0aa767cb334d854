"""Liveness and readiness: readiness checks each dependency and names the one that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

HealthCheck = Callable[[], Awaitable[Any]]
CHECK_TIMEOUT_SECONDS = 1.5


async def _run_check(check: HealthCheck) -> str:
    try:
        await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "down: timed out"
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


def default_checks(runtime: Any) -> dict[str, HealthCheck]:
    """PostgreSQL, Redis and (when the service uses events) RabbitMQ."""

    async def postgres() -> None:
        async with runtime.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def redis() -> None:
        await runtime.redis.ping()

    checks: dict[str, HealthCheck] = {"postgres": postgres, "redis": redis}
    if runtime.broker is not None:
        checks["rabbitmq"] = runtime.broker.check
    return checks


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", summary="Liveness: the process answers")
    async def live(request: Request) -> dict[str, str]:
        """Liveness: the process is up and serving."""
        return {"status": "ok", "service": request.app.state.settings.service_name}

    @router.get(
        "/health",
        summary="Readiness: every dependency answers",
        responses={503: {"description": "A dependency is down; `checks` names it"}},
    )
    async def ready(request: Request) -> JSONResponse:
        """Readiness: checks PostgreSQL, Redis, RabbitMQ (and service extras); 503 names what is down."""
        runtime = request.app.state.runtime
        checks = {**default_checks(runtime), **runtime.extra_health_checks}
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[n]) for n in names))
        report = dict(zip(names, results, strict=True))
        healthy = all(r == "ok" for r in results)
        body = {
            "status": "ok" if healthy else "unavailable",
            "service": runtime.settings.service_name,
            "checks": report,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    router.add_api_route("/health/ready", ready, methods=["GET"], include_in_schema=False)
    return router
