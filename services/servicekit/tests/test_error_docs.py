"""OpenAPI lists the errors the handlers answer: the 400 for an unreadable body on every body route."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Form
from pydantic import BaseModel

from servicekit.config import ServiceSettings
from servicekit.errors import error_responses, install_error_handlers
from servicekit.middleware import install_request_middleware

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}


class Body(BaseModel):
    count: int


def _app(*, list_errors: bool = True) -> FastAPI:
    router = APIRouter()
    listed = error_responses(422) if list_errors else None

    @router.post("/things", responses=listed)
    async def add_thing(body: Body) -> dict[str, Any]:
        return {"count": body.count}

    @router.post("/token", responses=listed)
    async def token(username: Annotated[str, Form()]) -> dict[str, str]:
        return {"username": username}

    @router.get("/things", responses=listed)
    async def list_things() -> list[int]:
        return []

    @router.post("/things/{thing_id}/cancel", responses=listed)
    async def cancel_thing(thing_id: int) -> dict[str, int]:
        return {"cancelled": thing_id}

    app = FastAPI()
    app.state.settings = ServiceSettings()
    install_error_handlers(app)
    install_request_middleware(app, "kit")
    app.include_router(router)
    return app


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _unparsable(operation: dict[str, Any]) -> dict[str, Any] | None:
    return operation["responses"].get("400")  # type: ignore[no-any-return]


async def test_every_operation_with_a_body_lists_the_400_and_no_other_does() -> None:
    async with await _client(_app()) as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    for operation in (paths["/things"]["post"], paths["/token"]["post"]):
        listed = _unparsable(operation)
        assert listed is not None and "not UTF-8" in listed["description"]
        assert listed["content"]["application/json"]["schema"] == ERROR_REF
        assert list(operation["responses"]) == sorted(operation["responses"])
    assert _unparsable(paths["/things"]["get"]) is None
    assert _unparsable(paths["/things/{thing_id}/cancel"]["post"]) is None


async def test_the_400_refers_to_the_error_shape_even_when_no_route_lists_errors() -> None:
    async with await _client(_app(list_errors=False)) as client:
        spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert _unparsable(spec["paths"]["/things"]["post"]) is not None
    assert schemas["ErrorResponse"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message"}


async def test_the_documented_400_is_what_an_unreadable_body_gets() -> None:
    """Bytes that are not UTF-8 never reach validation: the listed 400, in the one error shape;
    text that is not JSON is a 422 like any other invalid input."""
    json_type = {"content-type": "application/json"}
    async with await _client(_app()) as client:
        unreadable = await client.post("/things", content=b'{"count": "\xff"}', headers=json_type)
        not_json = await client.post("/things", content=b'{"count": ', headers=json_type)
        broken_form = await client.post(
            "/token", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"}
        )
    assert unreadable.status_code == 400 and unreadable.json()["error"]["code"] == "bad_request"
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "validation_error"
    assert broken_form.status_code == 400 and broken_form.json()["error"]["code"] == "bad_request"


async def test_generating_the_document_again_keeps_one_400() -> None:
    app = _app()
    first = app.openapi()["paths"]["/things"]["post"]["responses"]
    again = app.openapi()["paths"]["/things"]["post"]["responses"]
    assert list(again) == list(first) == ["200", "400", "422"]
