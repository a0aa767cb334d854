"""auth-service request and response models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

from auth_service.passwords import password_problem, personal_password_problem

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$"
# The roles an admin grants and revokes through the API (``user`` is everyone's, ``admin`` the
# bootstrap admin's): anything else is a 422.
GrantableRole = Literal["staff"]


class RegisterRequest(BaseModel):
    """A new account. Unknown fields (role, id, is_active, ...) are ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"email": "user@example.com", "username": "moviefan", "password": "SecurePass123!"}]
        },
    )

    email: EmailStr = Field(max_length=254)
    username: str = Field(pattern=USERNAME_PATTERN, description="3-32 letters, digits, _ . -")
    password: str = Field(
        min_length=8,
        max_length=128,
        description="Not a common password; must not contain the username or the email's local part",
    )
    full_name: str | None = Field(default=None, max_length=100)
    phone_number: str | None = Field(default=None, pattern=r"^\+?[0-9 ()-]{6,20}$")

    @field_validator("password")
    @classmethod
    def _strong_enough(cls, value: str, info: ValidationInfo) -> str:
        # email and username are declared above, so they are in info.data when they were valid.
        problem = password_problem(value) or personal_password_problem(
            value, info.data.get("username"), info.data.get("email")
        )
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("full_name")
    @classmethod
    def _strip_name(cls, value: str | None) -> str | None:
        return value.strip() or None if value else None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    username: str
    full_name: str | None
    phone_number: str | None
    roles: list[str]
    is_active: bool
    created_at: datetime


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Access token lifetime in seconds")
    refresh_token: str


class RefreshRequest(BaseModel):
    refresh_token: str = Field(min_length=10, max_length=200)


class VerifyResponse(BaseModel):
    user_id: uuid.UUID
    username: str
    email: str
    roles: list[str]


class RoleGrant(BaseModel):
    """A role to give a user."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"role": "staff"}]})

    role: GrantableRole = Field(description="`staff`: may check tickets in at the door")
