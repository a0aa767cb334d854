"""Test helpers shared by every service's tests (real PostgreSQL, Redis and RabbitMQ)."""

from servicekit.testing.helpers import (
    app_client,
    mint_token,
    test_settings_overrides,
    wait_until,
)
from servicekit.testing.proxy import TcpProxy
from servicekit.testing.rabbit import RabbitSpy
from servicekit.testing.round_trips import not_counted, round_trips

__all__ = [
    "RabbitSpy",
    "TcpProxy",
    "app_client",
    "mint_token",
    "not_counted",
    "round_trips",
    "test_settings_overrides",
    "wait_until",
]
