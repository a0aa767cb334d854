"""Every dependency of every service runs on the event loop: FastAPI runs a plain ``def``
dependency (and a class used as ``Depends()``) in a worker thread, a thread hop per request."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.security import OAuth2PasswordRequestForm

PACKAGES = ("auth_service", "movie_service", "booking_service", "payment_service", "notification_service")

# Form parsing: auth's POST /token takes the OAuth2 password form (a class, so a worker
# thread per login); it is the one allowed, the login hashes a password in a thread anyway.
FORM_CLASSES: set[Any] = {OAuth2PasswordRequestForm}


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        assert sub.call is not None
        yield sub.call
        yield from _dependencies(sub)


def _runs_on_the_loop(call: Callable[..., Any]) -> bool:
    """A coroutine or async generator function, or an instance with an ``async def __call__``."""
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    if inspect.isclass(call) or inspect.isroutine(call):
        return False
    return inspect.iscoroutinefunction(type(call).__call__)


def _name(call: Callable[..., Any]) -> str:
    target = call if inspect.isroutine(call) or inspect.isclass(call) else type(call)
    return f"{target.__module__}.{target.__qualname__}"


def _routes(app: FastAPI) -> Iterator[tuple[str, Dependant]]:
    """Every HTTP route with its dependant (routers included with their own dependencies)."""
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is not None:
            yield f"{','.join(sorted(route.methods or ()))} {route.path}", dependant


def test_every_dependency_of_every_service_is_a_coroutine() -> None:
    offenders, checked = [], dict.fromkeys(PACKAGES, 0)
    for package in PACKAGES:
        app = importlib.import_module(f"{package}.main").create_app()
        for route, dependant in _routes(app):
            for call in _dependencies(dependant):
                checked[package] += 1
                if not _runs_on_the_loop(call) and call not in FORM_CLASSES:
                    offenders.append(f"{package} {route}: {_name(call)}")
    assert all(checked.values()), f"no route dependencies found (has FastAPI's routing changed?): {checked}"
    assert offenders == [], "dependencies FastAPI runs in a worker thread:\n" + "\n".join(offenders)
