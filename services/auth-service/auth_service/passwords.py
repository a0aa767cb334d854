"""Password policy and argon2id hashing, always off the event loop.

argon2id (argon2-cffi) rather than passlib's bcrypt: passlib is unmaintained and
its bcrypt backend breaks with bcrypt 5; argon2id is memory-hard (RFC 9106).
"""

from __future__ import annotations

import asyncio
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from servicekit.components import Component


@cache
def _common_passwords() -> frozenset[str]:
    text = resources.files("auth_service").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problem(password: str) -> str | None:
    """Why a password is unacceptable, or None."""
    if len(password.encode()) > 256:
        return "password is too long"
    if password.lower() in _common_passwords():
        return "password is too common"
    if len(set(password)) < 4:
        return "password has too few distinct characters"
    return None


# Shorter names are not looked for in a password: a one- or two-letter email local part
# ("jo@...") would refuse most passwords and protects nothing. Usernames are 3+ anyway.
PERSONAL_PART_MIN_LENGTH = 3


def personal_password_problem(password: str, username: str | None, email: str | None) -> str | None:
    """Why a password is unacceptable for this account (it contains the account's own
    username or email local part, case-insensitively), or None."""
    lowered = password.casefold()
    local_part = email.rpartition("@")[0] if email else None
    for part, what in ((username, "your username"), (local_part, "the part of your email before @")):
        if part and len(part) >= PERSONAL_PART_MIN_LENGTH and part.casefold() in lowered:
            return f"password must not contain {what}"
    return None


class PasswordService:
    """Hashes and verifies in a worker thread so the event loop never blocks."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._dummy_hash = self._hasher.hash("timing-equaliser-not-a-password")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Verify; with no hash (unknown user) verify a dummy so timing does not tell."""
        target = password_hash or self._dummy_hash
        try:
            ok = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return bool(ok) and password_hash is not None


PASSWORDS: Component[PasswordService] = Component("password service")
