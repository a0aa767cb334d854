"""Bearer-token verification done locally by every service (no call to auth per request)."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from jose import JWTError, jwt

from servicekit.cache import LocalCache
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

    @property
    def is_staff(self) -> bool:
        """Staff at the door (role ``staff``); an admin may do whatever staff may."""
        return "staff" in self.roles or self.is_admin


def decode_token(
    token: str, settings: ServiceSettings, token_type: str, now: float | None = None
) -> dict[str, Any]:
    """Verify signature (pinned algorithm), exp, iat, iss, aud and the token type; return claims.

    ``now`` (epoch seconds, default the wall clock) is the moment ``iat`` is checked against.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options=_REQUIRED_CLAIMS,
        )
    except (JWTError, TypeError) as exc:  # python-jose raises TypeError on a null exp/iat/nbf
        raise Unauthorized("Invalid or expired token") from exc
    if claims.get("typ") != token_type:
        raise Unauthorized("Invalid or expired token")
    if not _issued_by(claims, time.time() if now is None else now, settings.jwt_clock_skew_seconds):
        raise Unauthorized("Invalid or expired token")
    return claims


def _issued_by(claims: dict[str, Any], now: float, skew_seconds: int) -> bool:
    """``iat`` is a number no later than ``now`` plus the allowed clock skew.

    python-jose only checks that ``iat`` is an integer (and takes ``True`` for one), so a
    token "issued" in the future, by a forger or an issuer with a wrong clock, would pass.
    """
    issued_at = claims.get("iat")
    if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
        return False
    return issued_at <= now + skew_seconds


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


class AccessTokens:
    """Access tokens verified once, then remembered until they expire.

    A client sends the same token with every request until it expires; checking its
    signature and claims again each time was a tenth of a booking's CPU. A remembered
    token is only trusted until its own ``exp`` (checked at every use), and the memory
    is bounded (least recently used out first). Invalid tokens (an ``iat`` in the future
    included) are never remembered.
    """

    def __init__(
        self, settings: ServiceSettings, max_tokens: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings, self._clock = settings, clock
        # Budgeted in entries (each counts 1), not bytes: a token and its principal are small.
        self._verified: LocalCache[str, tuple[Principal, float]] = LocalCache(
            max_tokens, fresh_for=self._until_exp, clock=clock
        )

    def principal(self, token: str) -> Principal:
        """The caller the access token names; 401 when it is invalid or expired."""
        known = self._verified.get(token)
        if known is not None:
            return known[0]
        claims = decode_token(token, self._settings, ACCESS_TOKEN_TYPE, now=self._clock())
        principal = principal_from_claims(claims)
        self._verified.put(token, (principal, float(claims["exp"])))
        return principal

    def _until_exp(self, known: tuple[Principal, float]) -> float:
        return known[1] - self._clock()


async def current_user(request: Request, token: str | None = Depends(_bearer)) -> Principal:
    """The caller of this request; 401 when the bearer token is missing or invalid."""
    if not token:
        raise Unauthorized("Not authenticated")
    tokens: AccessTokens = request.app.state.access_tokens
    principal = tokens.principal(token)
    user_id_var.set(str(principal.user_id))
    return principal


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The caller, who must hold the ``admin`` role (403 otherwise)."""
    if not user.is_admin:
        raise Forbidden("Administrator role required")
    return user


async def staff_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    """The caller, who must hold the ``staff`` or the ``admin`` role (403 otherwise)."""
    if not user.is_staff:
        raise Forbidden("Staff role required")
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
StaffUser = Annotated[Principal, Depends(staff_user)]
InternalCaller = Depends(internal_caller)
