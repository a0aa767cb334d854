"""Issuing access tokens (JWT, pinned algorithm) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from jose import jwt

from auth_service.config import AuthSettings
from servicekit.security import ACCESS_TOKEN_TYPE


def create_access_token(
    settings: AuthSettings, user_id: uuid.UUID, username: str, email: str, roles: list[str]
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "username": username,
        "email": email,
        "roles": roles,
        "typ": ACCESS_TOKEN_TYPE,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=settings.access_token_minutes)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)


def new_refresh_token() -> tuple[str, str]:
    """A random refresh token and the digest that is stored instead of it."""
    token = secrets.token_urlsafe(48)
    return token, digest(token)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
