"""Access tokens are verified once and remembered only until they expire."""

from __future__ import annotations

import time
import uuid

import pytest
from jose import jwt

from servicekit.config import ServiceSettings
from servicekit.errors import Unauthorized
from servicekit.security import AccessTokens


def _token(settings: ServiceSettings, expires_in: float, **extra: object) -> str:
    now = time.time()
    claims = {
        "sub": str(uuid.uuid4()),
        "typ": "access",
        "iat": int(now),
        "exp": now + expires_in,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "username": "ann",
        **extra,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)


def test_a_token_is_remembered_until_its_exp_and_verified_again_after() -> None:
    settings = ServiceSettings()
    now = [time.time()]
    tokens = AccessTokens(settings, clock=lambda: now[0])
    token = _token(settings, expires_in=60)
    first = tokens.principal(token)
    assert tokens.principal(token) is first  # remembered, not verified again
    now[0] += 61  # past its exp: the remembered principal is not used any more
    assert tokens.principal(token) is not first


def test_an_expired_token_is_refused() -> None:
    settings = ServiceSettings()
    with pytest.raises(Unauthorized):
        AccessTokens(settings).principal(_token(settings, expires_in=-5))


def test_invalid_tokens_are_never_remembered() -> None:
    settings = ServiceSettings()
    tokens = AccessTokens(settings)
    forged = _token(settings, expires_in=60)[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tokens.principal(forged)
    with pytest.raises(Unauthorized):
        tokens.principal(_token(settings, expires_in=60, typ="refresh"))


def test_a_token_issued_in_the_future_is_refused_and_not_remembered() -> None:
    settings = ServiceSettings(jwt_clock_skew_seconds=30)
    now = [time.time()]
    tokens = AccessTokens(settings, clock=lambda: now[0])
    from_the_future = _token(settings, expires_in=3600, iat=int(now[0]) + 120)
    for _ in range(2):  # the refusal is not cached as good between the two tries
        with pytest.raises(Unauthorized):
            tokens.principal(from_the_future)
    now[0] += 120  # the verifier's clock reaches the token's iat: now it is valid
    assert tokens.principal(from_the_future).username == "ann"


def test_an_iat_within_the_clock_skew_is_accepted() -> None:
    settings = ServiceSettings(jwt_clock_skew_seconds=30)
    tokens = AccessTokens(settings)
    assert tokens.principal(_token(settings, expires_in=60, iat=int(time.time()) + 10)).username == "ann"


MISSING = object()


@pytest.mark.parametrize("iat", [MISSING, "soon", True, None], ids=["missing", "text", "bool", "null"])
def test_a_token_without_a_numeric_iat_is_refused(iat: object) -> None:
    settings = ServiceSettings()
    token = _token(settings, expires_in=60)
    claims = jwt.get_unverified_claims(token)
    if iat is MISSING:
        del claims["iat"]
    else:
        claims["iat"] = iat
    resigned = jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm)
    with pytest.raises(Unauthorized):
        AccessTokens(settings).principal(resigned)
