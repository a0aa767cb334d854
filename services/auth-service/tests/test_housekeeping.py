"""Refresh tokens are pruned by servicekit's housekeeping a day after they expire."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from auth_service.config import AuthSettings
from auth_service.main import create_app
from auth_service.models import RefreshToken
from servicekit.testing import app_client


async def test_refresh_tokens_go_a_day_after_they_expire_and_unexpired_revoked_ones_stay(
    settings: AuthSettings, register: Any
) -> None:
    user = await register()
    now = datetime.now(UTC)
    rows = {
        "long_expired": (now - timedelta(days=2), None),
        "just_expired": (now - timedelta(hours=1), None),
        "revoked_live": (now + timedelta(days=5), now),
        "live": (now + timedelta(days=5), None),
    }
    app = create_app(settings)
    async with app_client(app):
        runtime = app.state.runtime
        hashes = {name: hashlib.sha256(f"{name}{uuid.uuid4()}".encode()).hexdigest() for name in rows}
        async with runtime.sessionmaker() as session, session.begin():
            for name, (expires_at, revoked_at) in rows.items():
                values = {"user_id": uuid.UUID(user["id"]), "token_hash": hashes[name]}
                await session.execute(
                    insert(RefreshToken).values(**values, expires_at=expires_at, revoked_at=revoked_at)
                )
        assert runtime.housekeeper is not None
        assert await runtime.housekeeper.run_pass() is True
        async with runtime.sessionmaker() as session:
            stmt = select(RefreshToken.token_hash).where(RefreshToken.token_hash.in_(hashes.values()))
            kept = set((await session.execute(stmt)).scalars())
    assert kept == {hashes[name] for name in ("just_expired", "revoked_live", "live")}
