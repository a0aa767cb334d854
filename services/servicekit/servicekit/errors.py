"""One exception hierarchy, one handler, one JSON error shape for every service.

Every error body is ``{"error": {"code", "message", "request_id", "details"?}}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from servicekit.context import request_id_var

logger = logging.getLogger("servicekit.errors")


class AppError(Exception):
    """Base of every error a service answers on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details
        self.headers = headers or {}


class Unauthorized(AppError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str = "Not authenticated", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(AppError):
    status, code = 403, "forbidden"


class NotFound(AppError):
    status, code = 404, "not_found"


class Conflict(AppError):
    status, code = 409, "conflict"


class Unprocessable(AppError):
    status, code = 422, "validation_error"


class TooManyRequests(AppError):
    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(message, **kw)


class BadGateway(AppError):
    status, code = 502, "bad_gateway"


class ServiceUnavailable(AppError):
    """503 with ``Retry-After`` (seconds), so a client knows when trying again makes sense."""

    status, code = 503, "service_unavailable"

    def __init__(self, message: str, retry_after: int = 1, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(message, **kw)


class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    details: Any = None


class ErrorResponse(BaseModel):
    """The JSON body of every error."""

    error: ErrorBody


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid bearer token",
    402: "Payment declined",
    403: "Not allowed for this role",
    404: "Not found (or not yours)",
    409: "Conflict with the current state",
    413: "Body too large",
    422: "Invalid input",
    429: "Too many requests",
    502: "Upstream failed",
    503: "A dependency is unavailable, or the service is overloaded; retry after Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses.

    The 400 for an unreadable body is not listed here: every operation with a request body
    gets it from ``document_unparsable_body``.
    """
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(s, "Error")} for s in statuses}


UNPARSABLE_BODY_DESCRIPTION = (
    "Body could not be read (not UTF-8 text, or a broken form); "
    "well-formed text that is not valid JSON is a 422"
)
_ERROR_SCHEMA_REF = "#/components/schemas/{model}"


def document_unparsable_body(app: FastAPI) -> None:
    """List a 400 on every OpenAPI operation that takes a request body.

    FastAPI answers 400 "There was an error parsing the body" (in the one error shape, through
    the HTTP handler below) when a body cannot even be read, before any route code or
    validation runs; an operation without a body never reads one. So the 400 belongs to
    exactly the operations with a ``requestBody``, and is added to the generated document
    once here rather than by hand on each route.
    """
    document_error(app, 400, UNPARSABLE_BODY_DESCRIPTION, lambda _path, operation: "requestBody" in operation)


OperationFilter = Callable[[str, dict[str, Any]], bool]


def document_error(app: FastAPI, status: int, description: str, applies: OperationFilter) -> None:
    """List ``status`` (in the one error shape) on every operation ``applies(path, operation)``
    picks, unless a route lists that status itself: for errors that middleware or FastAPI
    answer before any route code runs."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI; listing the error again changes nothing
        _list_error(schema, str(status), description, applies)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def _list_error(schema: dict[str, Any], status: str, description: str, applies: OperationFilter) -> None:
    operations = [
        op
        for path, methods in schema.get("paths", {}).items()
        for op in methods.values()
        if isinstance(op, dict) and applies(path, op)
    ]
    if not operations:
        return
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if "ErrorResponse" not in components:
        error_schema = ErrorResponse.model_json_schema(ref_template=_ERROR_SCHEMA_REF)
        components.update(error_schema.pop("$defs", {}), ErrorResponse=error_schema)
    ref = {"$ref": _ERROR_SCHEMA_REF.format(model="ErrorResponse")}
    for operation in operations:
        listed = {"description": description, "content": {"application/json": {"schema": ref}}}
        responses = {status: listed, **operation.get("responses", {})}
        operation["responses"] = dict(sorted(responses.items()))


def error_body(code: str, message: str, details: Any = None, request_id: str | None = None) -> dict[str, Any]:
    """The one error shape (``ErrorResponse``); the request id is the current request's unless given."""
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "request_id": request_id or request_id_var.get(),
    }
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_json(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    cleaned = []
    for err in exc.errors():
        item = {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": err.get("msg"),
            "type": err.get("type"),
        }
        cleaned.append(item)
    return cleaned


async def _app_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_json(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = _clean_validation_errors(exc)
    first = details[0] if details else {"loc": [], "msg": "invalid input"}
    where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
    message = f"{where}: {first['msg']}" if where else str(first["msg"])
    return error_json(422, "validation_error", message, details)


async def _http_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_json(
        exc.status_code, code, str(exc.detail), headers=dict(exc.headers) if exc.headers else None
    )


# PostgreSQL refuses text it cannot store (a NUL character): that is bad input, not a crash.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})
# PostgreSQL refusing or dropping connections is an outage to retry, not a bug: class 08
# (connection exception), class 53 (insufficient resources: 53300 "sorry, too many clients
# already", asyncpg's TooManyConnectionsError) and 57P01-57P05 (shutting down, starting up).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P")


def _database_unavailable(exc: DBAPIError) -> bool:
    """The database refused, dropped or could not take the connection (retry later)."""
    sqlstate = getattr(exc.orig, "sqlstate", None) or ""
    return (
        exc.connection_invalidated
        or isinstance(exc.orig, OSError)
        or sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
    )


async def _database_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE_TEXT_SQLSTATES:
        return error_json(422, "validation_error", "Text must not contain NUL (\\u0000) characters")
    if _database_unavailable(exc):
        return await _unavailable_handler(request, exc)
    return unexpected_error(exc)


# A dependency that is down or saturated (database pool exhausted, Redis or a socket
# unreachable) is a fast 503 the client may retry, never a 500.
DEPENDENCY_UNAVAILABLE: tuple[type[Exception], ...] = (
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
)


def dependency_unavailable(exc: BaseException) -> bool:
    """A dependency refused, dropped or could not take the work: an outage to wait out and
    retry (what the handlers answer 503), not a bug."""
    if isinstance(exc, DBAPIError):
        return _database_unavailable(exc)
    return isinstance(exc, DEPENDENCY_UNAVAILABLE)


async def _unavailable_handler(_: Request, exc: Exception) -> JSONResponse:
    logger.warning("dependency unavailable: %s", type(exc).__name__)
    return error_json(
        503, "service_unavailable", "A dependency is unavailable; retry shortly", headers={"Retry-After": "1"}
    )


def unexpected_error(exc: Exception) -> JSONResponse:
    """The 500 answer: logged in full with the request id, answered without internals.

    Unhandled exceptions reach it from InternalErrorMiddleware (still inside the request's
    context, so the answer carries its request id), not from an ``Exception`` handler:
    Starlette runs that one outside every middleware, after the context is gone.
    """
    logger.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
    return error_json(500, "internal_error", "An unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    """Register the one error shape for app, validation, HTTP, database and dependency errors."""
    document_unparsable_body(app)
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(DBAPIError, _database_handler)
    for unavailable in DEPENDENCY_UNAVAILABLE:
        app.add_exception_handler(unavailable, _unavailable_handler)
