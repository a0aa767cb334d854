"""Property-based tests of every service's OpenAPI (schemathesis), through the running gateway.

Each public operation of each service is called with generated input (valid and invalid),
as a real user (the admin for movie-service's admin writes), and the answer must be no 5xx,
a documented status code, a documented content type, and a body that fits its own schema.

Internal operations (``/internal/...``) are not routed by the gateway (test_bad_input checks
that they answer 404 there); they are tested on the service's own port with the internal
token, found as ``<SVC>_URL`` or, by the runner's port convention (gateway NN080, services
NN001..NN005), next to ``GATEWAY_URL``.

Bounded: ``SCHEMATHESIS_MAX_EXAMPLES`` (default 12) examples per operation keeps the run short.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.system

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "AdminDevPass123!")
INTERNAL_TOKEN = os.environ.get("INTERNAL_TOKEN", "dev-only-internal-token")
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12"))
GATEWAY_PREFIX = {
    "auth": "auth",
    "movie": "movies",
    "booking": "bookings",
    "payment": "payments",
    "notification": "notifications",
}
SERVICE_INDEX = {"auth": 1, "movie": 2, "booking": 3, "payment": 4, "notification": 5}


# No exception for FastAPI's 400 on an unreadable body: servicekit lists it on every operation
# with a request body, so status_code_conformance holds it to the document like any other answer.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def service_url(service: str) -> str:
    """A service's own port (for its internal operations, never routed by the gateway)."""
    explicit = os.environ.get(f"{service.upper()}_URL")
    if explicit:
        return explicit.rstrip("/")
    gateway = urlsplit(GATEWAY_URL)
    port = (gateway.port or 80) - 80 + SERVICE_INDEX[service]
    return f"{gateway.scheme}://{gateway.hostname}:{port}"


def gateway_base(service: str) -> str:
    return f"{GATEWAY_URL}/api/{GATEWAY_PREFIX[service]}"


def login(username: str, password: str) -> str:
    form = {"username": username, "password": password}
    response = httpx.post(f"{GATEWAY_URL}/api/auth/token", data=form, timeout=15)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def call(case: Any, session: Any, headers: dict[str, str], base_url: str) -> None:
    case.call_and_validate(base_url=base_url, session=session, headers=headers, checks=CHECKS, timeout=15)


def public_call(case: Any, session: Any, token: str, service: str) -> None:
    """An operation as the gateway serves it; internal ones on the service's own port."""
    if case.operation.path.startswith("/internal/"):
        call(case, session, {"X-Internal-Token": INTERNAL_TOKEN}, service_url(service))
    else:
        call(case, session, {"Authorization": f"Bearer {token}"}, gateway_base(service))


def fuzz_operation(operation: Any, mode: GenerationMode, run: Callable[[Any], None]) -> str | None:
    """Hypothesis over one operation in one mode; the failure as text, or None."""

    @BOUNDED
    @given(case=operation.as_strategy(generation_mode=mode))
    def examples(case: Any) -> None:
        run(case)

    try:
        examples()
    except Unsatisfiable:
        return None  # negative mode of an operation without parameters: no invalid input exists
    except Exception as exc:  # every failure of every operation is reported, not only the first
        return f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}"
    return None


def fuzz_service(service: str, token_for: Callable[[Any], str], session: Any) -> None:
    schema = schemathesis.openapi.from_url(f"{gateway_base(service)}/openapi.json", wait_for_schema=10)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            failure = fuzz_operation(
                operation, mode, lambda case: public_call(case, session, token_for(case), service)
            )
            failures.append(failure) if failure else None
    assert not failures, "\n\n".join(failures)


@pytest.fixture(scope="module")
def user_token() -> str:
    name = f"st{os.urandom(6).hex()}"
    body = {"email": f"{name}@example.com", "username": name, "password": "Schema-Fuzz-Pass-42"}
    created = httpx.post(f"{GATEWAY_URL}/api/auth/register", json=body, timeout=15)
    assert created.status_code == 201, created.text
    return login(name, body["password"])


@pytest.fixture(scope="module")
def admin_token() -> str:
    return login(ADMIN_USERNAME, ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def fuzz_session() -> Iterator[Any]:
    with requests.Session() as session:
        yield session


@pytest.mark.parametrize("service", ["auth", "booking", "payment"])
def test_user_services_keep_their_contract(service: str, fuzz_session: Any, user_token: str) -> None:
    """Every operation as a real user (internal ones with the internal token)."""
    fuzz_service(service, lambda case: user_token, fuzz_session)


def test_movie_service_keeps_its_contract(fuzz_session: Any, user_token: str, admin_token: str) -> None:
    """Reads as a user; admin writes (POST/PATCH/DELETE) as the admin, so they reach validation
    and storage rather than stopping at 403 (generated rows are junk programme entries)."""
    fuzz_service("movie", lambda case: user_token if case.method == "GET" else admin_token, fuzz_session)


def test_notification_service_keeps_its_contract(
    fuzz_session: Any, user_token: str, admin_token: str
) -> None:
    """The admin-only retry as the admin, so it reaches its look-up rather than a 403."""
    fuzz_service(
        "notification",
        lambda case: admin_token if case.path.endswith("/retry") else user_token,
        fuzz_session,
    )
