"""Housekeeping against the real PostgreSQL: what goes, what stays, replicas, outages, metrics."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import MetaData, Table, false, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.app import Runtime, ServiceSpec, build_app, runtime_consumer
from servicekit.config import ServiceSettings
from servicekit.events import EventEnvelope, outbox_table, processed_events_table
from servicekit.events.consumer import EventConsumer
from servicekit.housekeeping import (
    Housekeeper,
    Retention,
    outbox_retention,
    processed_events_retention,
    prune_batch,
)
from servicekit.testing import TcpProxy, app_client
from servicekit.testing.helpers import PG_HOST, PG_PORT, database_url

DAY = timedelta(days=1)


@dataclass
class Tables:
    outbox: Table
    processed: Table
    sessionmaker: async_sessionmaker[AsyncSession]

    async def add_outbox(
        self, count: int, published_ago: timedelta | None, created_ago: timedelta
    ) -> set[Any]:
        """``count`` events created ``created_ago``, published ``published_ago`` (None: unpublished)."""
        now = datetime.now(UTC)
        rows = [
            {
                "event_id": uuid.uuid4(),
                "event_type": "kit.kept",
                "payload": {},
                "created_at": now - created_ago,
                "published_at": None if published_ago is None else now - published_ago,
            }
            for _ in range(count)
        ]
        async with self.sessionmaker() as session, session.begin():
            await session.execute(insert(self.outbox), rows)
        return {row["event_id"] for row in rows}

    async def add_processed(self, count: int, processed_ago: timedelta) -> set[Any]:
        now = datetime.now(UTC)
        rows = [
            {
                "event_id": uuid.uuid4(),
                "consumer": "kit",
                "event_type": "kit.kept",
                "processed_at": now - processed_ago,
            }
            for _ in range(count)
        ]
        async with self.sessionmaker() as session, session.begin():
            await session.execute(insert(self.processed), rows)
        return {row["event_id"] for row in rows}

    async def ids(self, table: Table) -> set[Any]:
        async with self.sessionmaker() as session:
            return set((await session.execute(select(table.c.event_id))).scalars())


@pytest.fixture
async def kept(engine: AsyncEngine) -> AsyncIterator[Tables]:
    """An outbox and a processed_events table in a schema of the test's own."""
    schema = f"kit_hk_{uuid.uuid4().hex[:8]}"
    metadata = MetaData(schema=schema)
    tables = Tables(
        outbox_table(metadata),
        processed_events_table(metadata),
        async_sessionmaker(engine, expire_on_commit=False),
    )
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(metadata.create_all)
    yield tables
    async with engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def hk_settings(settings: ServiceSettings) -> ServiceSettings:
    """Default retentions (3 days outbox, 14 days dedupe), a service label of the test's own."""
    return settings.model_copy(update={"service_name": f"kit-hk-{uuid.uuid4().hex[:6]}"})


def housekeeper(
    kept: Tables,
    settings: ServiceSettings,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    **overrides: Any,
) -> Housekeeper:
    settings = settings.model_copy(update=overrides)
    retentions = [
        outbox_retention(kept.outbox, settings),
        processed_events_retention(kept.processed, settings),
    ]
    return Housekeeper(sessionmaker or kept.sessionmaker, retentions, settings)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_a_pass_prunes_old_published_events_and_keeps_recent_and_unpublished_ones(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    old = await kept.add_outbox(5, published_ago=4 * DAY, created_ago=4 * DAY)
    recent = await kept.add_outbox(5, published_ago=2 * DAY, created_ago=4 * DAY)
    stuck = await kept.add_outbox(3, published_ago=None, created_ago=30 * DAY)
    fresh = await kept.add_outbox(2, published_ago=None, created_ago=timedelta(0))

    assert await housekeeper(kept, hk_settings).run_pass() is True

    assert await kept.ids(kept.outbox) == recent | stuck | fresh
    assert old.isdisjoint(await kept.ids(kept.outbox))


async def test_a_pass_prunes_dedupe_records_past_their_retention_only(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    old = await kept.add_processed(4, processed_ago=15 * DAY)
    recent = await kept.add_processed(3, processed_ago=13 * DAY)
    fresh = await kept.add_processed(2, processed_ago=timedelta(0))

    assert await housekeeper(kept, hk_settings).run_pass() is True

    remaining = await kept.ids(kept.processed)
    assert remaining == recent | fresh and old.isdisjoint(remaining)


async def test_one_statement_deletes_at_most_a_batch_and_a_pass_takes_as_many_as_it_needs(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    await kept.add_outbox(35, published_ago=4 * DAY, created_ago=4 * DAY)
    keeper = housekeeper(kept, hk_settings, housekeeping_batch_size=10)
    retention = keeper.retentions[0]
    async with kept.sessionmaker() as session, session.begin():
        one_batch = await session.execute(prune_batch(retention, 10))
    assert getattr(one_batch, "rowcount", None) == 10
    assert len(await kept.ids(kept.outbox)) == 25

    assert await keeper.prune(retention) == 25
    assert await kept.ids(kept.outbox) == set()


async def test_rows_another_transaction_holds_are_skipped_not_waited_for(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    held = await kept.add_outbox(3, published_ago=4 * DAY, created_ago=4 * DAY)
    others = await kept.add_outbox(7, published_ago=4 * DAY, created_ago=4 * DAY)
    keeper = housekeeper(kept, hk_settings)
    async with kept.sessionmaker() as holder, holder.begin():
        await holder.execute(select(kept.outbox).where(kept.outbox.c.event_id.in_(held)).with_for_update())
        # A guard against a hang, not a timing assertion: a waiting DELETE would never return.
        assert await asyncio.wait_for(keeper.prune(keeper.retentions[0]), timeout=30) == 7
    assert await kept.ids(kept.outbox) == held
    assert others.isdisjoint(held)
    assert await keeper.prune(keeper.retentions[0]) == 3


async def test_two_replicas_pruning_at_once_delete_every_old_row_exactly_once(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    await kept.add_outbox(2000, published_ago=4 * DAY, created_ago=4 * DAY)
    recent = await kept.add_outbox(50, published_ago=DAY, created_ago=DAY)
    await kept.add_processed(1500, processed_ago=20 * DAY)
    replicas = [housekeeper(kept, hk_settings, housekeeping_batch_size=50) for _ in range(2)]
    before = sample("housekeeping_pruned_rows_total", service=hk_settings.service_name, table="outbox") or 0.0

    outcomes = await asyncio.gather(*(replica.run_pass() for replica in replicas))

    assert outcomes == [True, True]
    assert await kept.ids(kept.outbox) == recent
    assert await kept.ids(kept.processed) == set()
    pruned = sample("housekeeping_pruned_rows_total", service=hk_settings.service_name, table="outbox")
    assert pruned == before + 2000  # both replicas count into one series: each row was deleted once


async def test_the_gauges_show_the_rows_left_after_the_pass(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    await kept.add_outbox(4, published_ago=4 * DAY, created_ago=4 * DAY)
    await kept.add_outbox(6, published_ago=DAY, created_ago=DAY)
    await kept.add_outbox(2, published_ago=None, created_ago=DAY)
    await kept.add_processed(3, processed_ago=20 * DAY)
    await kept.add_processed(5, processed_ago=DAY)
    service = hk_settings.service_name

    assert await housekeeper(kept, hk_settings).run_pass() is True

    assert sample("housekeeping_table_rows", service=service, table="outbox", state="published") == 6
    assert sample("housekeeping_table_rows", service=service, table="outbox", state="unpublished") == 2
    assert sample("housekeeping_table_rows", service=service, table="processed_events", state="") == 5
    assert sample("housekeeping_pruned_rows_total", service=service, table="outbox") == 4
    assert sample("housekeeping_pruned_rows_total", service=service, table="processed_events") == 3
    assert sample("housekeeping_passes_total", service=service, outcome="succeeded") == 1
    assert sample("housekeeping_passes_total", service=service, outcome="failed") == 0


async def test_a_pass_during_a_database_outage_fails_quietly_and_the_next_one_prunes(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    old = await kept.add_outbox(5, published_ago=4 * DAY, created_ago=4 * DAY)
    proxy = TcpProxy(PG_HOST, int(PG_PORT))
    await proxy.start()
    url = database_url("postgres", host="127.0.0.1", port=str(proxy.port))
    engine = create_async_engine(url, pool_size=1, max_overflow=0, connect_args={"timeout": 5})
    keeper = housekeeper(kept, hk_settings, async_sessionmaker(engine, expire_on_commit=False))
    try:
        await keeper.count(keeper.retentions[0])  # a pooled connection, which the cut will break
        await proxy.cut()
        assert await keeper.run_pass() is False
        assert await keeper.run_pass() is False  # new connections are refused too
        assert old <= await kept.ids(kept.outbox)
        await proxy.restore()
        assert await keeper.run_pass() is True
        assert sample("housekeeping_passes_total", service=hk_settings.service_name, outcome="failed") == 2
    finally:
        await engine.dispose()
        await proxy.cut()
    assert old.isdisjoint(await kept.ids(kept.outbox))


async def _ignore(session: AsyncSession, event: EventEnvelope) -> None:
    return None


async def test_every_service_runtime_looks_after_its_outbox_its_consumers_ledger_and_its_own_tables(
    kept: Tables, hk_settings: ServiceSettings
) -> None:
    own = Retention("kit_own", kept.outbox, expired=false())

    def consumers(runtime: Runtime) -> list[EventConsumer]:  # two consumers, one ledger
        return [
            runtime_consumer(runtime, f"kit-hk-{name}", [f"kit.hk.{name}"], _ignore, kept.processed)
            for name in ("a", "b")
        ]

    spec = ServiceSpec("kit", "kit", routers=[], outbox=kept.outbox, consumers=consumers, retained=[own])
    app = build_app(hk_settings, spec)
    async with app_client(app):
        runtime: Runtime = app.state.runtime
        assert runtime.housekeeper is not None
        assert [(r.name, r.table) for r in runtime.housekeeper.retentions] == [
            ("outbox", kept.outbox),
            ("processed_events", kept.processed),
            ("kit_own", kept.outbox),
        ]
        assert "housekeeping" in {task.get_name() for task in runtime.tasks}
        assert await runtime.housekeeper.run_pass() is True
