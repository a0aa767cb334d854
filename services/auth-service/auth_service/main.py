"""auth-service application: ``python -m servicekit.serve auth_service``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from auth_service.config import AuthSettings
from auth_service.models import outbox
from auth_service.passwords import PASSWORDS, PasswordService
from auth_service.repository import refresh_token_retention
from auth_service.routes import router
from auth_service.service import ensure_admin
from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.components import Factory


def _components(settings: AuthSettings) -> list[Factory[Any]]:
    async def passwords(_: Runtime) -> PasswordService:
        # Made in a thread: it hashes its timing-equaliser once (argon2, tens of ms of CPU).
        return await asyncio.to_thread(
            PasswordService,
            settings.argon2_time_cost,
            settings.argon2_memory_kib,
            settings.argon2_parallelism,
        )

    return [Factory(PASSWORDS, passwords)]


async def _on_startup(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, AuthSettings)
    async with runtime.sessionmaker() as session, session.begin():
        await ensure_admin(session, settings, runtime[PASSWORDS])


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    spec = ServiceSpec(
        title="Movie Booking — auth-service",
        description="Accounts, password login (OAuth2 password flow), JWT access tokens, refresh tokens.",
        routers=[router],
        components=_components(settings),
        outbox=outbox,
        retained=[refresh_token_retention()],
        on_startup=_on_startup,
    )
    return build_app(settings, spec)
