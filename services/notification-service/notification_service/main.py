"""notification-service application: ``python -m servicekit.serve notification_service``."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from notification_service.channels import EmailSender, sms_provider
from notification_service.config import NotificationSettings
from notification_service.events import CONSUMER_NAME, ROUTING_KEYS
from notification_service.models import processed_events
from notification_service.routes import router
from notification_service.service import Dispatcher
from servicekit.app import Runtime, ServiceSpec, build_app, runtime_consumer
from servicekit.events.consumer import EventConsumer


def _dispatcher(runtime: Runtime) -> Dispatcher:
    """The one Dispatcher of this app (made on first use: consumers are built before on_startup)."""
    if "dispatcher" not in runtime.state:
        settings = runtime.settings
        assert isinstance(settings, NotificationSettings)
        # Claiming a notification and recording its outcome are one statement each.
        statements = async_sessionmaker(runtime.autocommit, expire_on_commit=False)
        runtime.state["dispatcher"] = Dispatcher(
            statements, settings, EmailSender(settings), sms_provider(settings)
        )
    dispatcher: Dispatcher = runtime.state["dispatcher"]
    return dispatcher


def _consumers(runtime: Runtime) -> list[EventConsumer]:
    settings = runtime.settings
    assert isinstance(settings, NotificationSettings)
    handler = _dispatcher(runtime).on_event
    return [
        runtime_consumer(
            runtime, CONSUMER_NAME, ROUTING_KEYS, handler, processed_events, settings.consumer_prefetch
        )
    ]


async def _on_startup(runtime: Runtime) -> None:
    runtime.extra_health_checks["smtp"] = _dispatcher(runtime).email.check


async def _on_shutdown(runtime: Runtime) -> None:
    dispatcher = _dispatcher(runtime)
    await dispatcher.email.aclose()
    await dispatcher.sms.aclose()


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    spec = ServiceSpec(
        title="Movie Booking — notification-service",
        description="Emails (and SMS) for registrations, tickets, cancellations, expiries and refunds.",
        routers=[router],
        consumers=_consumers,
        on_startup=_on_startup,
        on_shutdown=_on_shutdown,
        openapi_tags=[{"name": "notifications", "description": "A user's notification history and channels"}],
    )
    return build_app(settings, spec)
