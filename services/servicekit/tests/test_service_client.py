"""A call to another service that fails is a 503 that says when to try again."""

from __future__ import annotations

import httpx
import pytest

from servicekit.config import ServiceSettings
from servicekit.errors import ServiceUnavailable
from servicekit.http import ServiceClient


def _client(handler: httpx.MockTransport) -> ServiceClient:
    settings = ServiceSettings(service_name="caller", breaker_fail_max=2, breaker_reset_seconds=7.5)
    return ServiceClient("callee", "http://callee.invalid", settings, transport=handler)


def _refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


async def test_an_unreachable_service_is_a_503_with_retry_after_one_second() -> None:
    client = _client(httpx.MockTransport(_refusing))
    with pytest.raises(ServiceUnavailable) as refused:
        await client.request("GET", "/anything")
    assert refused.value.status == 503
    assert refused.value.headers == {"Retry-After": "1"}
    await client.aclose()


async def test_an_open_circuit_says_retry_after_its_reset_timeout() -> None:
    client = _client(httpx.MockTransport(lambda request: httpx.Response(502)))
    for _ in range(2):  # the second failure opens the circuit
        with pytest.raises(ServiceUnavailable):
            await client.request("GET", "/anything")
    assert client.breaker.state == "open"
    with pytest.raises(ServiceUnavailable) as fast:
        await client.request("GET", "/anything")
    assert fast.value.headers == {"Retry-After": "8"}  # 7.5 s rounded up
    await client.aclose()


async def test_a_4xx_answer_is_returned_not_raised() -> None:
    client = _client(httpx.MockTransport(lambda request: httpx.Response(404, json={"error": {}})))
    assert (await client.request("GET", "/missing")).status_code == 404
    assert client.breaker.state == "closed"
    await client.aclose()
