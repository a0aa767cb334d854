"""The app factory every service uses: middleware, errors, health, metrics, lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit.admission import install_admission_limit
from servicekit.cache import create_redis
from servicekit.components import Component, Factory
from servicekit.config import ServiceSettings
from servicekit.db import create_engine, create_sessionmaker
from servicekit.errors import install_error_handlers
from servicekit.events.broker import Broker
from servicekit.events.consumer import EventConsumer, EventHandler, ReadWithClaim, StatementHandler
from servicekit.events.outbox import OutboxWakeup
from servicekit.events.relay import OutboxRelay
from servicekit.health import HealthCheck, health_router
from servicekit.heap import settle_after_startup
from servicekit.housekeeping import (
    Housekeeper,
    Retention,
    outbox_retention,
    processed_events_retention,
)
from servicekit.logging import configure_logging
from servicekit.metrics import metrics_router
from servicekit.middleware import install_request_middleware
from servicekit.security import AccessTokens
from servicekit.tracing import instrument_app, instrument_engine

logger = logging.getLogger("servicekit.app")
T = TypeVar("T")


@dataclass
class Runtime:
    """Everything a running service holds: made in lifespan, handed out by dependencies."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: Redis
    # Set by every commit that wrote outbox rows (sessions of ``sessionmaker`` do it themselves;
    # a raw statement into the outbox calls ``outbox_wakeup.notify()``): the relay publishes now.
    outbox_wakeup: OutboxWakeup = field(default_factory=OutboxWakeup)
    broker: Broker | None = None
    relay: OutboxRelay | None = None
    housekeeper: Housekeeper | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    extra_health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _components: dict[Component[Any], Any] = field(default_factory=dict, init=False, repr=False)
    _closing: AsyncExitStack = field(default_factory=AsyncExitStack, init=False, repr=False)

    def __getitem__(self, component: Component[T]) -> T:
        """The running ``component``."""
        try:
            value: T = self._components[component]
        except KeyError:
            raise LookupError(
                f"component {component.name!r} is not built: list its Factory in "
                "ServiceSpec.components, after the components it uses"
            ) from None
        return value

    def __setitem__(self, component: Component[T], value: T) -> None:
        """Hand out ``value`` as ``component`` from now on (a test swaps a part this way)."""
        self._components[component] = value

    async def build_components(self, factories: Sequence[Factory[Any]]) -> None:
        """Build each component in the order given; each may use the ones built before it."""
        for factory in factories:
            value = await factory.build(self)
            self[factory.component] = value
            if factory.close is not None:
                self._closing.push_async_callback(factory.close, value)

    async def close_components(self) -> None:
        """Close what ``build_components`` built, the last built first."""
        await self._closing.aclose()

    @property
    def autocommit(self) -> AsyncEngine:
        """The engine without BEGIN/COMMIT round trips, for writes that are one statement each
        (the same pool as ``engine``)."""
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run a background task for the app's lifetime (cancelled at shutdown)."""
        self.tasks.append(asyncio.ensure_future(coro))
        self.tasks[-1].set_name(name)


RuntimeHook = Callable[[Runtime], Awaitable[None]]


def runtime_consumer(
    runtime: Runtime,
    name: str,
    routing_keys: list[str],
    handler: EventHandler,
    processed: Table,
    prefetch: int = 20,
    statement: StatementHandler | None = None,
    read_with_claim: ReadWithClaim | None = None,
) -> EventConsumer:
    """A consumer wired to the runtime's sessionmaker, broker and settings (and, for a
    ``statement`` handler, its autocommit engine and the relay's wake-up)."""
    assert runtime.broker is not None  # consumers are built only when events are enabled
    return EventConsumer(
        name,
        routing_keys,
        handler,
        runtime.sessionmaker,
        processed,
        runtime.broker,
        runtime.settings,
        prefetch,
        statement=statement,
        autocommit=runtime.autocommit if statement is not None else None,
        wakeup=runtime.outbox_wakeup,
        read_with_claim=read_with_claim,
    )


@dataclass
class ServiceSpec:
    """What a service plugs into the shared app factory."""

    title: str
    description: str
    routers: Sequence[APIRouter]
    # The service's own parts, built in this order before the consumers and on_startup.
    components: Sequence[Factory[Any]] = ()
    outbox: Table | None = None
    consumers: Callable[[Runtime], list[EventConsumer]] | None = None
    on_startup: RuntimeHook | None = None
    uses_broker: bool = True
    # Tables the housekeeping pass prunes besides the outbox and the consumers' processed_events.
    retained: Sequence[Retention] = ()
    openapi_tags: list[dict[str, Any]] | None = None


async def _start(runtime: Runtime, spec: ServiceSpec) -> None:
    settings = runtime.settings
    await runtime.build_components(spec.components)
    if spec.uses_broker and settings.events_enabled:
        runtime.broker = Broker(settings)
        runtime.broker.start()
        if spec.outbox is not None:
            runtime.relay = OutboxRelay(
                runtime.engine, spec.outbox, runtime.broker, settings, runtime.outbox_wakeup
            )
            runtime.relay.start()
        if spec.consumers is not None:
            runtime.consumers = spec.consumers(runtime)
            for consumer in runtime.consumers:
                runtime.spawn(consumer.start(), f"consumer-{consumer.name}")
            runtime.spawn(_report_queue_depths(runtime), "consumer-lag")
    retentions = _retentions(runtime, spec)
    if retentions:
        runtime.housekeeper = Housekeeper(runtime.sessionmaker, retentions, settings)
        runtime.spawn(runtime.housekeeper.run_forever(), "housekeeping")
    if spec.on_startup is not None:
        await spec.on_startup(runtime)


def _retentions(runtime: Runtime, spec: ServiceSpec) -> list[Retention]:
    """What housekeeping looks after: the outbox, each consumer's dedupe ledger, the service's own."""
    settings = runtime.settings
    found = [outbox_retention(spec.outbox, settings)] if spec.outbox is not None else []
    ledgers = dict.fromkeys(consumer.processed for consumer in runtime.consumers)
    found += [processed_events_retention(ledger, settings) for ledger in ledgers]
    return found + list(spec.retained)


async def _report_queue_depths(runtime: Runtime, every_seconds: float = 15.0) -> None:
    """Keep the consumer-lag gauges (main queue and dead letters) fresh."""
    while True:
        for consumer in runtime.consumers:
            try:
                await consumer.report_depths()
            except Exception as exc:  # the broker may be away; the next round retries
                logger.debug("queue depth not read: %s", type(exc).__name__)
        await asyncio.sleep(every_seconds)


async def _stop(runtime: Runtime) -> None:
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    if runtime.relay is not None:
        await runtime.relay.stop()
    if runtime.broker is not None:
        await runtime.broker.close()
    await runtime.close_components()
    await runtime.redis.aclose()
    await runtime.engine.dispose()


def build_app(settings: ServiceSettings, spec: ServiceSpec) -> FastAPI:
    """A FastAPI app with the shared middleware, error shape, /health, /metrics and lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        engine = create_engine(settings)
        instrument_engine(engine)
        wakeup = OutboxWakeup()
        sessionmaker = create_sessionmaker(engine, wakeup)
        runtime = Runtime(settings, engine, sessionmaker, create_redis(settings), wakeup)
        app.state.runtime = runtime
        await _start(runtime, spec)
        settle_after_startup(settings)
        logger.info("%s started (%s)", settings.service_name, settings.environment)
        try:
            yield
        finally:
            await _stop(runtime)

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="2.0.0",
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags,
    )
    app.state.settings = settings
    app.state.access_tokens = AccessTokens(settings)
    instrument_app(app, settings.service_name)
    install_error_handlers(app)
    install_admission_limit(app, settings)
    # Inside the request's context and metrics: a queued request's wait is part of its latency,
    # and a 503 for overload carries its request id.
    install_request_middleware(app, settings.service_name)
    app.include_router(health_router())
    app.include_router(metrics_router())
    for router in spec.routers:
        app.include_router(router)
    return app


# Dependencies are coroutines: FastAPI runs a plain ``def`` dependency in a worker thread,
# a thread hop per request (and a queue behind anyio's 40 threads under a burst).
async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
