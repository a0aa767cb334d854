"""The rules of auth: registration, login, token rotation, logout, the bootstrap admin."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import repository
from auth_service.config import AuthSettings
from auth_service.events import publish_user_registered
from auth_service.models import User
from auth_service.passwords import PasswordService
from auth_service.schemas import RegisterRequest, TokenResponse
from auth_service.throttle import LoginThrottle, login_subject
from auth_service.tokens import create_access_token, digest, new_refresh_token
from servicekit.errors import Conflict, NotFound, Unauthorized
from servicekit.security import Principal

logger = logging.getLogger("auth_service")
INVALID_CREDENTIALS = "Incorrect username or password"


async def register_user(session: AsyncSession, passwords: PasswordService, request: RegisterRequest) -> User:
    """Create a user with role ``user``; 409 naming the taken field(s)."""
    taken = await repository.taken_fields(session, request.email, request.username)
    if taken:
        raise Conflict(f"{' and '.join(taken)} already registered", code="already_exists", details=taken)
    user = User(
        email=request.email.lower(),
        username=request.username,
        full_name=request.full_name,
        phone_number=request.phone_number,
        password_hash=await passwords.hash(request.password),
        roles=["user"],
        is_active=True,
    )
    try:
        async with session.begin_nested():
            await repository.add_user(session, user)
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict("email or username already registered", code="already_exists") from exc
    await publish_user_registered(session, user)
    return user


async def issue_tokens(session: AsyncSession, settings: AuthSettings, user: User) -> TokenResponse:
    token, token_hash = new_refresh_token()
    expires = datetime.now(UTC) + timedelta(days=settings.refresh_token_days)
    await repository.add_refresh_token(session, user.id, token_hash, expires)
    access = create_access_token(settings, user.id, user.username, user.email, list(user.roles))
    return TokenResponse(
        access_token=access, expires_in=settings.access_token_minutes * 60, refresh_token=token
    )


async def login(
    session: AsyncSession,
    settings: AuthSettings,
    passwords: PasswordService,
    throttle: LoginThrottle,
    credentials: tuple[str, str, str],
) -> TokenResponse:
    """Password login by username or email. Same 401 whether the user exists or not.

    Failures count against the account (any identifier of it, any case) and the address;
    the lookup comes first so that a locked account is locked whichever name is typed.
    """
    identifier, password, client_ip = credentials
    user = await repository.find_user_by_login(session, identifier)
    subject = login_subject(user.id if user else None, identifier)
    await throttle.check(subject, client_ip)
    valid = await passwords.verify(user.password_hash if user else None, password)
    if not valid or user is None or not user.is_active:
        await throttle.record_failure(subject, client_ip)
        raise Unauthorized(INVALID_CREDENTIALS, code="invalid_credentials")
    await throttle.reset(subject)
    return await issue_tokens(session, settings, user)


async def refresh(session: AsyncSession, settings: AuthSettings, refresh_token: str) -> TokenResponse:
    """Rotate: the presented token is revoked and a new pair issued. Reuse of a
    revoked token revokes every token of that user (the token was likely stolen)."""
    token_hash = digest(refresh_token)
    row = await repository.revoke_refresh_token(session, token_hash)
    if row is None:
        stale = await repository.find_refresh_token(session, token_hash)
        if stale is not None and stale.revoked_at is not None:
            logger.warning("revoked refresh token reused; revoking all sessions of the user")
            await repository.revoke_all_for_user(session, stale.user_id)
            await session.commit()
        raise Unauthorized("Invalid or expired refresh token", code="invalid_refresh_token")
    user = await repository.get_user(session, row.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid or expired refresh token", code="invalid_refresh_token")
    return await issue_tokens(session, settings, user)


async def logout(session: AsyncSession, refresh_token: str) -> None:
    """Revoke the refresh token (idempotent: an unknown token is not an error)."""
    await repository.revoke_refresh_token(session, digest(refresh_token))


async def ensure_admin(session: AsyncSession, settings: AuthSettings, passwords: PasswordService) -> None:
    """Create the configured admin account once, at start-up."""
    if not (settings.admin_username and settings.admin_email and settings.admin_password):
        return
    if await repository.find_user_by_login(session, settings.admin_username):
        return
    user = User(
        email=settings.admin_email.lower(),
        username=settings.admin_username,
        password_hash=await passwords.hash(settings.admin_password.get_secret_value()),
        roles=["user", "admin"],
        is_active=True,
    )
    try:
        async with session.begin_nested():
            await repository.add_user(session, user)
    except IntegrityError:
        return  # another replica created it first
    logger.info("bootstrap admin account created", extra={"admin_username": settings.admin_username})


async def change_role(
    session: AsyncSession, admin: Principal, user_id: uuid.UUID, role: str, granted: bool
) -> User:
    """Grant (``granted``) or revoke a role; idempotent, 404 for an unknown user. The user's
    tokens carry the change from the next one issued (login or refresh), not before."""
    change = repository.grant_role if granted else repository.revoke_role
    user = await change(session, user_id, role)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    action = "granted" if granted else "revoked"
    logger.info("role %s", action, extra={"role": role, "user_id": str(user_id), "by": str(admin.user_id)})
    return user
