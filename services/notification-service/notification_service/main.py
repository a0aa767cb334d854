"""notification-service application: ``python -m servicekit.serve notification_service``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import async_sessionmaker

from notification_service.channels import EmailSender, SmsProvider, sms_provider
from notification_service.config import NotificationSettings
from notification_service.events import CONSUMER_NAME, ROUTING_KEYS
from notification_service.models import processed_events
from notification_service.routes import router
from notification_service.service import DISPATCHER, Dispatcher, preference_with_claim
from servicekit.app import Runtime, ServiceSpec, build_app, runtime_consumer
from servicekit.components import Component, Factory
from servicekit.events.consumer import EventConsumer

EMAIL: Component[EmailSender] = Component("email sender")
SMS: Component[SmsProvider] = Component("sms provider")


def _components(settings: NotificationSettings) -> list[Factory[Any]]:
    async def email(_: Runtime) -> EmailSender:
        return EmailSender(settings)

    async def sms(_: Runtime) -> SmsProvider:
        return sms_provider(settings)

    async def dispatcher(runtime: Runtime) -> Dispatcher:
        # Claiming a notification and recording its outcome are one statement each.
        statements = async_sessionmaker(runtime.autocommit, expire_on_commit=False)
        return Dispatcher(statements, settings, runtime[EMAIL], runtime[SMS])

    return [
        Factory(EMAIL, email, close=EmailSender.aclose),
        # SmsProvider is a Protocol: the provider's own aclose, not the Protocol's stub.
        Factory(SMS, sms, close=lambda provider: provider.aclose()),
        Factory(DISPATCHER, dispatcher),
    ]


def _consumers(runtime: Runtime) -> list[EventConsumer]:
    settings = runtime.settings
    assert isinstance(settings, NotificationSettings)
    handler = runtime[DISPATCHER].on_event
    prefetch = settings.consumer_prefetch
    return [
        runtime_consumer(
            runtime, CONSUMER_NAME, ROUTING_KEYS, handler, processed_events, prefetch,
            read_with_claim=preference_with_claim,
        )
    ]  # fmt: skip


async def _on_startup(runtime: Runtime) -> None:
    runtime.extra_health_checks["smtp"] = runtime[EMAIL].check


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    spec = ServiceSpec(
        title="Movie Booking — notification-service",
        description="Emails (and SMS) for registrations, tickets, cancellations, expiries and refunds.",
        routers=[router],
        components=_components(settings),
        consumers=_consumers,
        on_startup=_on_startup,
        openapi_tags=[{"name": "notifications", "description": "A user's notification history and channels"}],
    )
    return build_app(settings, spec)
