"""The yardstick of issue 16, measured in the same run by the same client.

``reference_endpoint.py`` (a FastAPI endpoint doing one PostgreSQL ``SELECT 1`` and one Redis
``GET``, with the services' server settings) is started as a child process on a free
127.0.0.1 port, warmed up, driven by ``load.run`` exactly as the system is, and stopped.
Ratios of the purchase targets are the system's req/s over this endpoint's req/s.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from load import Job, Plan, run
from report import Figures, figures
from scenarios import Bench

from servicekit.testing.processes import free_port

REFERENCE = Path(__file__).with_name("reference_endpoint.py")
TITLE = "yardstick: 1 SELECT + 1 Redis GET (FastAPI)"


@contextmanager
def reference_server(lifetime_seconds: float) -> Iterator[str]:
    """The reference endpoint's base URL while it runs (it also stops by itself after its lifetime)."""
    port = free_port()
    command = [sys.executable, str(REFERENCE), "--port", str(port), "--seconds", str(lifetime_seconds)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(child, f"{url}/bare", 30.0)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)


def _wait_ready(child: subprocess.Popen[bytes], url: str, limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        if child.poll() is not None:
            error = child.stderr.read().decode(errors="replace")[-500:] if child.stderr else ""
            raise RuntimeError(f"reference endpoint exited ({child.returncode}): {error}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310  (127.0.0.1 only)
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"reference endpoint not ready after {limit_seconds:.0f} s")


def measure(bench: Bench, requests: int, clients: int) -> Figures:
    """req/s of the reference ``/query`` at ``clients`` clients (after an untimed warm-up)."""
    with reference_server(lifetime_seconds=bench.max_seconds * 2 + 60) as url:
        warm_up = Plan(url, [Job("get", "/query")] * min(requests, 1000), clients, bench.max_seconds)
        run(warm_up)
        plan = Plan(url, [Job("get", "/query")] * requests, clients, bench.max_seconds, [], bench.processes)
        return figures(TITLE, clients, run(plan), {200})
