"""A service's components: built in the declared order before start-up, handed to routes by the
component itself as a dependency, closed in the reverse order at shutdown."""

from __future__ import annotations

from typing import Annotated

import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends

from servicekit.app import Runtime, ServiceSpec, build_app
from servicekit.components import Component, Factory
from servicekit.config import ServiceSettings
from servicekit.testing import app_client

NAME: Component[str] = Component("name")
GREETING: Component[str] = Component("greeting")


def _spec(factories: list[Factory[str]], journal: list[str]) -> ServiceSpec:
    router = APIRouter()

    @router.get("/greeting")
    async def greeting(text: Annotated[str, Depends(GREETING)]) -> dict[str, str]:
        return {"greeting": text}

    async def on_startup(runtime: Runtime) -> None:
        journal.append(f"started with {runtime[GREETING]!r}")

    return ServiceSpec("kit", "kit", routers=[router], components=factories, on_startup=on_startup)


def _factories(journal: list[str]) -> list[Factory[str]]:
    async def name(_: Runtime) -> str:
        journal.append("built name")
        return "kit"

    async def greeting(runtime: Runtime) -> str:
        journal.append("built greeting")
        return f"hello {runtime[NAME]}"

    async def close(value: str) -> None:
        journal.append(f"closed {value!r}")

    return [Factory(NAME, name, close=close), Factory(GREETING, greeting, close=close)]


def _settings() -> ServiceSettings:
    return ServiceSettings(events_enabled=False)


async def test_components_are_built_in_order_handed_out_and_closed_in_reverse() -> None:
    journal: list[str] = []
    app = build_app(_settings(), _spec(_factories(journal), journal))
    async with app_client(app) as client:
        answer = await client.get("/greeting")
        assert answer.json() == {"greeting": "hello kit"}
        assert journal == ["built name", "built greeting", "started with 'hello kit'"]
    assert journal[3:] == ["closed 'hello kit'", "closed 'kit'"]


async def test_a_test_may_swap_a_running_component() -> None:
    app = build_app(_settings(), _spec(_factories([]), []))
    async with app_client(app) as client:
        app.state.runtime[GREETING] = "hi there"
        assert (await client.get("/greeting")).json() == {"greeting": "hi there"}


async def test_a_component_used_before_it_is_built_stops_the_start_naming_it() -> None:
    name, greeting = _factories([])
    app = build_app(_settings(), _spec([greeting, name], []))
    with pytest.raises(LookupError, match="component 'name' is not built"):
        async with LifespanManager(app):
            pass
