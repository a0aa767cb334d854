"""Bearer-token verification done locally by every service (no call to auth per request)."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from jose import JWTError, jwt

from servicekit.config import ServiceSettings
from servicekit.context import user_id_var
from servicekit.errors import Forbidden, NotFound, Unauthorized

ACCESS_TOKEN_TYPE = "access"

_bearer = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)

_REQUIRED_CLAIMS = {
    "require_exp": True,
    "require_iat": True,
    "require_aud": True,
    "require_iss": True,
    "require_sub": True,
}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, taken from a verified access token."""

    user_id: uuid.UUID
    username: str
    email: str
    roles: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def decode_token(token: str, settings: ServiceSettings, token_type: str) -> dict[str, Any]:
    """Verify signature (pinned algorithm), exp, iss, aud and the token type; return claims."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options=_REQUIRED_CLAIMS,
        )
    except JWTError as exc:
        raise Unauthorized("Invalid or expired token") from exc
    if claims.get("typ") != token_type:
        raise Unauthorized("Invalid or expired token")
    return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        return Principal(
            user_id=uuid.UUID(str(claims["sub"])),
            username=str(claims.get("username", "")),
            email=str(claims.get("email", "")),
            roles=tuple(str(r) for r in claims.get("roles", ())),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("Invalid or expired token") from exc


async def current_user(request: Request, token: str | None = Depends(_bearer)) -> Principal:
    """The caller of this request; 401 when the bearer token is missing or invalid."""
    if not token:
        raise Unauthorized("Not authenticated")
    settings: ServiceSettings = request.app.state.settings
    principal = principal_from_claims(decode_token(token, settings, ACCESS_TOKEN_TYPE))
    user_id_var.set(str(principal.user_id))
    return principal


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The caller, who must hold the ``admin`` role (403 otherwise)."""
    if not user.is_admin:
        raise Forbidden("Administrator role required")
    return user


async def internal_caller(request: Request) -> None:
    """Service-to-service endpoints require the shared internal token (404 otherwise)."""
    settings: ServiceSettings = request.app.state.settings
    given = request.headers.get("x-internal-token", "")
    expected = settings.internal_token.get_secret_value()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotFound("Not Found")


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
InternalCaller = Depends(internal_caller)
