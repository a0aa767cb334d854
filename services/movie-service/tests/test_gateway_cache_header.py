"""The seat map tells the gateway how long it may keep it: never past its statuses' life."""

from __future__ import annotations

import pytest

from movie_service.encoding import accepts_gzip
from movie_service.routes.deps import gateway_cache_until
from movie_service.seat_status import fresh_until


@pytest.mark.parametrize(
    ("asked_at", "ttl", "expected"),
    [
        (100.2, 1.0, 101.0),  # cut at the whole second in between
        (100.0, 1.0, 101.0),
        (100.7, 0.5, 101.0),
        (100.2, 0.5, 100.7),  # no whole second in between: the plain ttl
        (100.2, 0.0, 100.2),  # no cache at all
    ],
)
def test_statuses_live_at_most_ttl_and_end_on_a_whole_second(
    asked_at: float, ttl: float, expected: float
) -> None:
    until = fresh_until(asked_at, ttl)
    assert until == pytest.approx(expected)
    assert asked_at <= until <= asked_at + ttl


@pytest.mark.parametrize(
    ("fresh", "now", "header"),
    [
        # NGINX serves "@T" while its clock (whole seconds) reads T: @100 is served until 101.0.
        (101.0, 100.3, "@100"),
        (101.7, 100.3, "@100"),
        (101.0, 100.99, "@100"),
        (101.0, 101.0, "0"),  # its last whole second has come: not to be kept
        (100.6, 100.3, "0"),
    ],
)
def test_the_gateway_never_keeps_a_map_past_its_statuses(fresh: float, now: float, header: str) -> None:
    assert gateway_cache_until(fresh, now) == {"X-Accel-Expires": header}


@pytest.mark.parametrize(
    ("accept_encoding", "gzip"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, deflate", False),
        ("deflate, br", False),
        ("", False),
        ("x-gzip-ish", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_gzip_only_for_clients_that_accept_it(accept_encoding: str, gzip: bool) -> None:
    assert accepts_gzip(accept_encoding) is gzip
