"""Calls to other services: timeouts, an internal token, and a circuit breaker."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import httpx

from servicekit.breaker import AsyncCircuitBreaker, CircuitOpenError
from servicekit.components import Component, Factory
from servicekit.config import ServiceSettings
from servicekit.context import request_id_var
from servicekit.errors import ServiceUnavailable

if TYPE_CHECKING:
    from servicekit.app import Runtime

logger = logging.getLogger("servicekit.http")


class UpstreamServerError(Exception):
    """The other service answered 5xx; counts as a breaker failure."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"upstream answered {response.status_code}")
        self.response = response


class ServiceClient:
    """An HTTP client for one other service; fails fast with 503 when it is down."""

    def __init__(
        self,
        target: str,
        base_url: str,
        settings: ServiceSettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.target = target
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(settings.http_timeout_seconds),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            headers={"X-Internal-Token": settings.internal_token.get_secret_value()},
            transport=transport,
        )
        self.breaker = AsyncCircuitBreaker(
            target,
            service=settings.service_name,
            fail_max=settings.breaker_fail_max,
            reset_timeout=settings.breaker_reset_seconds,
        )

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {}) or {}
        request_id = request_id_var.get()
        if request_id:
            headers["X-Request-ID"] = request_id
        response = await self._client.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 500:
            raise UpstreamServerError(response)
        return response

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; 4xx answers are returned, outages become ServiceUnavailable (503)."""
        try:
            return await self.breaker.call(self._send, method, path, **kwargs)
        except CircuitOpenError as exc:
            raise ServiceUnavailable(
                f"The {self.target} service is unavailable", retry_after=math.ceil(self.breaker.reset_timeout)
            ) from exc
        except (httpx.TransportError, UpstreamServerError) as exc:
            logger.warning("call to %s failed: %s", self.target, type(exc).__name__)
            raise ServiceUnavailable(f"The {self.target} service is unavailable") from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def service_client(
    component: Component[ServiceClient],
    target: str,
    base_url: str,
    settings: ServiceSettings,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Factory[ServiceClient]:
    """A client of ``target`` (at ``base_url``) as the service's ``component``, closed at shutdown."""

    async def build(_: Runtime) -> ServiceClient:
        return ServiceClient(target, base_url, settings, transport=transport)

    return Factory(component, build, close=ServiceClient.aclose)
