"""An async circuit breaker over pybreaker.

pybreaker guards synchronous calls (its ``call_async`` needs tornado). Its
``calling()`` context manager drives the same state machine, and an exception
raised by the awaited call inside it counts as a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pybreaker

from servicekit.metrics import BREAKER_STATE

T = TypeVar("T")
CircuitOpenError = pybreaker.CircuitBreakerError
_STATE_VALUE = {"closed": 0, "half-open": 1, "open": 2}


class _StateGauge(pybreaker.CircuitBreakerListener):
    def __init__(self, service: str, target: str) -> None:
        self.gauge = BREAKER_STATE.labels(service, target)
        self.gauge.set(0)

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        self.gauge.set(_STATE_VALUE.get(new_state.name, 0))


class AsyncCircuitBreaker:
    """Fails fast with :class:`CircuitOpenError` after ``fail_max`` failures, for ``reset_timeout`` s."""

    def __init__(
        self,
        target: str,
        *,
        service: str = "service",
        fail_max: int = 5,
        reset_timeout: float = 10.0,
        exclude: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=list(exclude),
            listeners=[_StateGauge(service, target)],
            name=target,
        )

    @property
    def state(self) -> str:
        return str(self._breaker.current_state)

    @property
    def reset_timeout(self) -> float:
        """Seconds the circuit stays open before it lets one trial call through."""
        return float(self._breaker.reset_timeout)

    async def call(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Await ``func(*args, **kwargs)`` under the breaker; raises CircuitOpenError when open."""
        with self._breaker.calling():
            return await func(*args, **kwargs)
