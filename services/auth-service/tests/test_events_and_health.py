from __future__ import annotations

import uuid

import httpx

from auth_service.config import AuthSettings
from auth_service.main import create_app
from servicekit.testing import RabbitSpy, TcpProxy, app_client, wait_until
from servicekit.testing.helpers import test_settings_overrides

FAST = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
PASSWORD = "Correct-Horse-42"


def _body() -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {"email": f"e{suffix}@example.com", "username": f"e{suffix}", "password": PASSWORD}


async def test_user_registered_is_published_once_persistent(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    async with RabbitSpy(
        settings.rabbitmq_url.get_secret_value(), settings.events_exchange, ["user.#"]
    ) as spy:
        body = _body()
        assert (await client.post("/register", json=body)).status_code == 201

        def mine() -> list[dict[str, object]]:
            return [m for m in spy.of_type("user.registered") if m["data"]["email"] == body["email"]]

        await wait_until(lambda: _async(mine()), within=10, what="user.registered")
        event = mine()[0]
        assert event["producer"] == "auth-service" and event["version"] == 1
        assert event["_delivery_mode"] == 2  # persistent
        assert "password" not in str(event["data"]) and "hash" not in str(event["data"])
        # the relay marked it published, so it is not sent again
        response = await client.post("/register", json=_body())
        assert response.status_code == 201
        await wait_until(lambda: _async(len(spy.of_type("user.registered")) >= 2), within=10)
        assert len(mine()) == 1


async def _async(value: object) -> object:
    return value


async def test_registration_while_broker_unreachable_is_delivered_after(tmp_path: object) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    overrides = test_settings_overrides("auth_service", "auth", **FAST)
    real_url = overrides["rabbitmq_url"]
    overrides["rabbitmq_url"] = f"amqp://guest:guest@127.0.0.1:{proxy.port}/"
    settings = AuthSettings(**overrides)
    async with RabbitSpy(real_url, settings.events_exchange, ["user.registered"]) as spy:
        async with app_client(create_app(settings)) as client:
            await wait_until(lambda: _ready(client), within=15, what="broker connected")
            await proxy.cut()
            body = _body()
            assert (await client.post("/register", json=body)).status_code == 201
            health = await client.get("/health")
            assert health.status_code == 503 and health.json()["checks"]["rabbitmq"].startswith("down")
            await proxy.restore()
            await wait_until(
                lambda: _async(
                    [m for m in spy.of_type("user.registered") if m["data"]["email"] == body["email"]]
                ),
                within=30,
                what="event delivered after the broker came back",
            )
        mine = [m for m in spy.of_type("user.registered") if m["data"]["email"] == body["email"]]
        assert len(mine) == 1
    await proxy.cut()


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/health")).status_code == 200


async def test_health_names_the_dependency_that_is_down() -> None:
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    settings = AuthSettings(
        **test_settings_overrides(
            "auth_service", "auth", redis_url=f"redis://127.0.0.1:{proxy.port}/0", **FAST
        )
    )
    try:
        async with app_client(create_app(settings)) as client:
            await wait_until(lambda: _ready(client), within=15, what="all dependencies up")
            await proxy.cut()
            response = await client.get("/health")
            assert response.status_code == 503
            checks = response.json()["checks"]
            assert checks["redis"].startswith("down") and checks["postgres"] == "ok"
            assert (await client.get("/health/live")).status_code == 200
            await proxy.restore()
            await wait_until(lambda: _ready(client), within=15, what="redis back")
    finally:
        await proxy.cut()


async def test_metrics_show_the_per_route_histogram(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    await client.get(f"/verify?nonce={uuid.uuid4()}")
    text = (await client.get("/metrics")).text
    assert (
        'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/verify",service="auth-service"}'
        in text
    )
    assert "nonce" not in text  # labels are route templates, never raw paths


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health/live", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces" and len(made.headers["x-request-id"]) == 32
    error = await client.get("/nope")
    assert error.status_code == 404 and error.json()["error"]["request_id"] == error.headers["x-request-id"]
