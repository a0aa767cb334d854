"""auth-service HTTP API (thin: parse, call the service, shape the answer)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from auth_service import repository, service
from auth_service.config import AuthSettings
from auth_service.passwords import PASSWORDS, PasswordService
from auth_service.schemas import (
    GrantableRole,
    RefreshRequest,
    RegisterRequest,
    RoleGrant,
    TokenResponse,
    UserOut,
    VerifyResponse,
)
from auth_service.throttle import LoginThrottle
from servicekit.app import RuntimeDep
from servicekit.db import SessionDep
from servicekit.errors import NotFound, error_responses
from servicekit.security import AdminUser, CurrentUser

router = APIRouter(tags=["auth"])


async def _settings(request: Request) -> AuthSettings:
    settings: AuthSettings = request.app.state.settings
    return settings


SettingsDep = Annotated[AuthSettings, Depends(_settings)]
PasswordsDep = Annotated[PasswordService, Depends(PASSWORDS)]


def _client_ip(request: Request) -> str:
    forwarded = request.headers.get("x-real-ip")
    return forwarded or (request.client.host if request.client else "unknown")


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=error_responses(409, 422),
)
async def register(body: RegisterRequest, session: SessionDep, passwords: PasswordsDep) -> UserOut:
    """Create an account (role `user`); the password is stored as an argon2id hash."""
    user = await service.register_user(session, passwords, body)
    return UserOut.model_validate(user)


@router.post("/token", response_model=TokenResponse, responses=error_responses(401, 422, 429))
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    passwords: PasswordsDep,
    runtime: RuntimeDep,
) -> TokenResponse:
    """Log in with username (or email) and password: an access token and a refresh token."""
    throttle = LoginThrottle(runtime.redis, settings)
    credentials = (form.username, form.password, _client_ip(request))
    return await service.login(session, settings, passwords, throttle, credentials)


@router.get("/verify", response_model=VerifyResponse, responses=error_responses(401))
async def verify(user: CurrentUser) -> VerifyResponse:
    """Check a bearer token and return who it belongs to."""
    return VerifyResponse(
        user_id=user.user_id, username=user.username, email=user.email, roles=list(user.roles)
    )


@router.get("/me", response_model=UserOut, responses=error_responses(401, 404))
async def me(user: CurrentUser, session: SessionDep) -> UserOut:
    """The caller's own account."""
    found = await repository.get_user(session, user.user_id)
    if found is None:
        raise NotFound("User not found")
    return UserOut.model_validate(found)


@router.post("/refresh", response_model=TokenResponse, responses=error_responses(401, 422))
async def refresh(body: RefreshRequest, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    """Exchange a refresh token for a new pair (the old refresh token stops working)."""
    return await service.refresh(session, settings, body.refresh_token)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(422))
async def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """Revoke a refresh token (idempotent)."""
    await service.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/users/{user_id}/roles", response_model=UserOut, responses=error_responses(401, 403, 404, 422))
async def grant_role(user_id: uuid.UUID, body: RoleGrant, admin: AdminUser, session: SessionDep) -> UserOut:
    """Give a user a role (admin only; idempotent). Its tokens carry it from the next one issued."""
    return UserOut.model_validate(await service.change_role(session, admin, user_id, body.role, True))


@router.delete(
    "/users/{user_id}/roles/{role}", response_model=UserOut, responses=error_responses(401, 403, 404, 422)
)
async def revoke_role(
    user_id: uuid.UUID, role: GrantableRole, admin: AdminUser, session: SessionDep
) -> UserOut:
    """Take a role from a user (admin only; idempotent). A token already issued keeps it until it expires."""
    return UserOut.model_validate(await service.change_role(session, admin, user_id, role, False))
