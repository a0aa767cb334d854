"""A service's own parts (its HTTP clients, caches, rule objects): typed, declared once.

A ``Component[T]`` names one part and its type; a ``Factory`` says how the part is made
from the runtime and, if it holds connections, how it is closed. ``ServiceSpec.components``
lists the factories in the order lifespan builds them (a factory may use the components
listed before it), before the broker, the consumers and ``on_startup``; shutdown closes
them in the reverse order. ``runtime[COMPONENT]`` reads one back, and the component itself
is the dependency that hands it to a route::

    PAYING: Component[Payments] = Component("payments")
    PaymentsDep = Annotated[Payments, Depends(PAYING)]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from fastapi import Request

if TYPE_CHECKING:
    from servicekit.app import Runtime

T = TypeVar("T")


class Component(Generic[T]):
    """The typed name of one part of a running service; as a dependency, it hands the part out."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Component({self.name!r})"

    # A coroutine, like every dependency here: FastAPI runs a plain ``def`` one in a thread.
    async def __call__(self, request: Request) -> T:
        runtime: Runtime = request.app.state.runtime
        return runtime[self]


@dataclass(frozen=True)
class Factory(Generic[T]):
    """How ``component`` is made from the runtime (and the components made before it), and closed."""

    component: Component[T]
    build: Callable[[Runtime], Awaitable[T]]
    close: Callable[[T], Awaitable[Any]] | None = None
