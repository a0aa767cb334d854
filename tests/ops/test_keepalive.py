"""uvicorn keeps an idle connection longer than NGINX keeps it for reuse: the side that
closes an idle upstream connection must be NGINX, or a request sent on a connection
uvicorn is closing is answered 502."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from servicekit import serve

NGINX_UPSTREAM_KEEPALIVE_DEFAULT = 60.0  # seconds, when an upstream block names none
NGINX_TIME_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def nginx_seconds(value: str) -> float:
    """An NGINX time ("60", "60s", "1m30s", "500ms") in seconds."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d)?", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not an NGINX time: {value!r}"
    return sum(int(n) * NGINX_TIME_UNITS[u or "s"] for n, u in parts)


def upstream_keepalive_timeouts(template: str) -> dict[str, float]:
    """Upstream name -> how long NGINX keeps an idle connection to it (upstreams with ``keepalive``)."""
    text = re.sub(r"\$\{[A-Z_]+\}", "", template)  # ${AUTH_SERVERS} would end a block early
    text = re.sub(r"#[^\n]*", "", text)
    found = {}
    for name, body in re.findall(r"\bupstream\s+(\w+)\s*\{([^}]*)\}", text):
        if re.search(r"(?:^|;|\s)keepalive\s+\d+\s*;", body):
            timeouts = re.findall(r"\bkeepalive_timeout\s+(\S+?)\s*;", body)
            found[name] = max(map(nginx_seconds, timeouts), default=NGINX_UPSTREAM_KEEPALIVE_DEFAULT)
    return found


def uvicorn_keep_alive(monkeypatch: pytest.MonkeyPatch, package: str) -> float:
    """The timeout_keep_alive uvicorn gets from ``servicekit.serve`` (its own default when not passed)."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(serve.uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert serve.main([package]) == 0
    assert len(calls) == 1, "servicekit.serve should call uvicorn.run once"
    args, kwargs = calls[0]
    return float(uvicorn.Config(*args, **kwargs).timeout_keep_alive)


def test_template_parsing() -> None:
    template = """
    # upstream commented_out { server a:1; keepalive 8; keepalive_timeout 999s; }
    upstream a { ${A_SERVERS} keepalive 64; keepalive_timeout 1m30s; }
    upstream b {
      server b:1;
      keepalive 8;
    }
    upstream c { server c:1; }
    server { keepalive_timeout 500s; }
    """
    assert upstream_keepalive_timeouts(template) == {"a": 90.0, "b": 60.0}


def test_uvicorn_keeps_idle_connections_longer_than_the_gateway(
    monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    nginx = upstream_keepalive_timeouts((repo_root / "gateway/nginx.conf.template").read_text())
    assert len(nginx) == len(serve.DEFAULT_PORTS), f"an upstream with keepalive per service: {nginx}"
    for package in serve.DEFAULT_PORTS:
        keep_alive = uvicorn_keep_alive(monkeypatch, package)
        closer = {name: seconds for name, seconds in nginx.items() if seconds >= keep_alive}
        assert closer == {}, f"{package}: uvicorn closes idle connections after {keep_alive}s, {closer}"
