"""Role dependencies: AdminUser takes admins, StaffUser takes staff and admins."""

from __future__ import annotations

import uuid

import pytest

from servicekit.errors import Forbidden
from servicekit.security import Principal, admin_user, staff_user


def _caller(*roles: str) -> Principal:
    return Principal(uuid.uuid4(), "ann", "ann@example.com", ("user", *roles))


@pytest.mark.parametrize("roles", [("staff",), ("admin",), ("staff", "admin")])
async def test_staff_and_admins_pass_the_staff_check(roles: tuple[str, ...]) -> None:
    caller = _caller(*roles)
    assert await staff_user(caller) is caller


async def test_a_plain_user_is_refused_by_the_staff_check_and_staff_by_the_admin_check() -> None:
    with pytest.raises(Forbidden):
        await staff_user(_caller())
    with pytest.raises(Forbidden):
        await admin_user(_caller("staff"))
