"""Every SQL statement of auth-service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.models import RefreshToken, User
from servicekit.housekeeping import Retention, older_than

EXPIRED_REFRESH_TOKENS_KEPT_SECONDS = 24 * 60 * 60


async def find_user_by_login(session: AsyncSession, login: str) -> User | None:
    """By username or email, case-insensitively."""
    lowered = login.lower()
    stmt = select(User).where(or_(func.lower(User.username) == lowered, func.lower(User.email) == lowered))
    return (await session.execute(stmt)).scalars().first()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def taken_fields(session: AsyncSession, email: str, username: str) -> list[str]:
    stmt = select(func.lower(User.email), func.lower(User.username)).where(
        or_(func.lower(User.email) == email.lower(), func.lower(User.username) == username.lower())
    )
    taken: set[str] = set()
    for row_email, row_username in (await session.execute(stmt)).all():
        if row_email == email.lower():
            taken.add("email")
        if row_username == username.lower():
            taken.add("username")
    return sorted(taken)


async def add_user(session: AsyncSession, user: User) -> User:
    session.add(user)
    await session.flush()
    return user


async def grant_role(session: AsyncSession, user_id: uuid.UUID, role: str) -> User | None:
    """Give ``role`` to the user (once, however often and concurrently asked); None when unknown."""
    roles = func.array_append(func.array_remove(User.roles, role), role)
    return await _set_roles(session, user_id, roles)


async def revoke_role(session: AsyncSession, user_id: uuid.UUID, role: str) -> User | None:
    """Take ``role`` from the user (idempotent); None when the user is unknown."""
    return await _set_roles(session, user_id, func.array_remove(User.roles, role))


async def _set_roles(session: AsyncSession, user_id: uuid.UUID, roles: Any) -> User | None:
    stmt = update(User).where(User.id == user_id).values(roles=roles).returning(User)
    result = await session.execute(stmt.execution_options(populate_existing=True))
    return result.scalars().first()


async def add_refresh_token(
    session: AsyncSession, user_id: uuid.UUID, token_hash: str, expires_at: datetime
) -> None:
    session.add(RefreshToken(user_id=user_id, token_hash=token_hash, expires_at=expires_at))
    await session.flush()


async def revoke_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """Revoke a live token and return it; None when unknown, expired or already revoked."""
    stmt = (
        update(RefreshToken)
        .where(
            RefreshToken.token_hash == token_hash,
            RefreshToken.revoked_at.is_(None),
            RefreshToken.expires_at > func.now(),
        )
        .values(revoked_at=func.now())
        .returning(RefreshToken)
    )
    return (await session.execute(stmt)).scalars().first()


async def find_refresh_token(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.execute(stmt)).scalars().first()


async def revoke_all_for_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


def refresh_token_retention() -> Retention:
    """For servicekit's housekeeping: a refresh token goes a day after it expired (it is refused
    from then on whatever its row says; revoked tokens that have not expired stay, for reuse checks)."""
    tokens = RefreshToken.__table__
    assert isinstance(tokens, Table)
    return Retention(
        "refresh_tokens",
        tokens,
        expired=older_than(tokens.c.expires_at, EXPIRED_REFRESH_TOKENS_KEPT_SECONDS),
        states={"revoked": tokens.c.revoked_at.is_not(None), "live": tokens.c.revoked_at.is_(None)},
    )
