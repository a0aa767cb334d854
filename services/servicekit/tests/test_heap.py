from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from servicekit.app import ServiceSpec, build_app
from servicekit.config import ServiceSettings
from servicekit.heap import GEN1_THRESHOLD, GEN2_THRESHOLD, settle_after_startup
from servicekit.testing import app_client


@pytest.fixture
def interpreter_gc() -> Iterator[None]:
    """Put the test process's collector back as it was."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_start_up_objects_are_frozen_and_young_collections_spaced(interpreter_gc: None) -> None:
    gc.unfreeze()
    settle_after_startup(ServiceSettings(gc_gen0_threshold=12_345))
    assert gc.get_threshold() == (12_345, GEN1_THRESHOLD, GEN2_THRESHOLD)
    assert gc.get_freeze_count() > 1000  # the interpreter's and the libraries' objects
    tracked = {id(o) for o in gc.get_objects()}  # the collector's generations no longer hold them
    assert id(gc.get_threshold) not in tracked and id(settle_after_startup) not in tracked


def test_freezing_can_be_turned_off(interpreter_gc: None) -> None:
    gc.unfreeze()
    settle_after_startup(ServiceSettings(gc_freeze_after_startup=False, gc_gen0_threshold=700))
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (700, GEN1_THRESHOLD, GEN2_THRESHOLD)


async def test_a_service_settles_its_heap_once_started(interpreter_gc: None) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    settings = ServiceSettings(events_enabled=False, gc_gen0_threshold=40_000)
    app = build_app(settings, ServiceSpec(title="kit", description="", routers=[], uses_broker=False))
    async with app_client(app) as client:
        assert (await client.get("/health/live")).status_code == 200
        assert gc.get_threshold()[0] == 40_000
        assert gc.get_freeze_count() > 1000
