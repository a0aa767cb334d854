"""auth-service application: ``python -m servicekit.serve auth_service``."""

from __future__ import annotations

from fastapi import FastAPI

from auth_service.config import AuthSettings
from auth_service.models import outbox
from auth_service.passwords import PasswordService
from auth_service.repository import refresh_token_retention
from auth_service.routes import router
from auth_service.service import ensure_admin
from servicekit.app import Runtime, ServiceSpec, build_app


async def _on_startup(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, AuthSettings)
    passwords = PasswordService(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    runtime.state["passwords"] = passwords
    async with runtime.sessionmaker() as session, session.begin():
        await ensure_admin(session, settings, passwords)


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    spec = ServiceSpec(
        title="Movie Booking — auth-service",
        description="Accounts, password login (OAuth2 password flow), JWT access tokens, refresh tokens.",
        routers=[router],
        outbox=outbox,
        retained=[refresh_token_retention()],
        on_startup=_on_startup,
    )
    return build_app(settings, spec)
