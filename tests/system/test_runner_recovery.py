"""The native runner after a crash: ``status`` names what is down, ``up`` starts only that.

Needs ``scripts/test.sh`` (or ``scripts/run_local.sh up``): ``SYSTEM_RUN_DIR`` names the
runner's folder (default var/local), ``SERVICE_URLS`` the services and ``GATEWAY_URL`` the
gateway. The test kills notification, the second booking replica (when there is one) and the
gateway's NGINX master with SIGKILL and brings them back with ``up``, so the system is whole
again when it ends; should it fail half-way, it runs ``up`` once more before it reports.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from servicekit.testing import wait_until

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = Path(os.environ.get("SYSTEM_RUN_DIR") or ROOT / "var/local")
GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080").rstrip("/")
SERVICE_URLS = [u for u in os.environ.get("SERVICE_URLS", "").split(",") if u] or [
    f"http://127.0.0.1:{port}" for port in range(8001, 8006)
]
# The runner's own settings: the instance it started recorded them (RUN_DIR/instance.env), so the
# test calls it as an operator's new shell would after a crash, naming nothing but RUN_DIR.
RUNNER_SETTINGS = {
    *(f"{name}_PORT" for name in ("AUTH", "MOVIE", "BOOKING", "PAYMENT", "NOTIFICATION", "SMTP", "GATEWAY")),
    "DB_NAME", "DB_FRESH", "BOOKING_REPLICAS", "EVENTS_EXCHANGE", "QUEUE_PREFIX", "REDIS_PREFIX",
    "AUTH_TOKEN_RATE", "AUTH_TOKEN_BURST", "EXTRA_SERVICE_ENV",
}  # fmt: skip


async def runner(command: str) -> tuple[int, str]:
    """``scripts/run_local.sh COMMAND`` for the running instance: exit code and output."""
    env = {name: value for name, value in os.environ.items() if name not in RUNNER_SETTINGS}
    process = await asyncio.create_subprocess_exec(
        "bash", str(ROOT / "scripts/run_local.sh"), command,
        env={**env, "RUN_DIR": str(RUN_DIR)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=100)
    assert process.returncode is not None
    return process.returncode, output.decode()


def pids() -> dict[str, int]:
    """Every part's pid, from the runner's pid files."""
    files = [*sorted((RUN_DIR / "pids").glob("*.pid")), RUN_DIR / "nginx.pid"]
    return {path.stem if path.parent.name == "pids" else "gateway": int(path.read_text()) for path in files}


def health_url(part: str) -> str:
    booking = urlsplit(SERVICE_URLS[2])
    if part == "booking-2":  # the runner's replica N listens on booking's port + 10 * (N - 1)
        return f"http://{booking.hostname}:{(booking.port or 80) + 10}/health"
    return f"{GATEWAY_URL}/health" if part == "gateway" else f"{SERVICE_URLS[4]}/health"


async def answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


def live_processes() -> dict[int, int]:
    """pid -> process group of every process that is not a zombie (from /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue  # gone while we looked
        if state != "Z":
            found[int(stat.parent.name)] = int(group)
    return found


def status_rows(output: str) -> dict[str, str]:
    """``status`` output (``PART PID STATE`` rows, then ``down: PART...``): first word -> the rest."""
    lines = (line.strip().partition(" ") for line in output.splitlines())
    return {first: rest.strip() for first, _, rest in lines}


async def test_status_names_the_crashed_parts_and_up_starts_only_them() -> None:
    code, output = await runner("status")
    assert code == 0, f"the system is not whole before the test:\n{output}"
    before = pids()
    # A killed NGINX master leaves its workers behind, still serving the port.
    victims = ["notification", *(["booking-2"] if "booking-2" in before else []), "gateway"]
    try:
        for part in victims:
            os.kill(before[part], signal.SIGKILL)

        async def all_dead() -> bool:
            return not {before[part] for part in victims} & live_processes().keys()

        await wait_until(all_dead, within=10, what="the killed parts to die")

        code, output = await runner("status")
        rows = status_rows(output)
        assert code != 0, output
        assert set(rows.get("down:", "").split()) == set(victims), output
        for part in before:
            pid_and_state = rows.get(part, "- -").split(None, 1)
            assert pid_and_state[1].startswith("not running" if part in victims else "running, "), output

        code, output = await runner("up")
        assert code == 0, output
        after = pids()
        kept = [part for part in before if part not in victims]
        assert {p: after[p] for p in kept} == {p: before[p] for p in kept}, "up restarted a running part"
        async with httpx.AsyncClient(timeout=5) as client:
            for part in victims:
                assert after[part] != before[part], f"up did not start {part} again:\n{output}"
                assert await answers(client, health_url(part)), f"{part} does not answer /health"
            assert await answers(client, f"{GATEWAY_URL}/api/notifications/health")
        leftover = [pid for pid, group in live_processes().items() if group == before["gateway"]]
        assert not leftover, f"the crashed gateway's workers live on: {leftover}"

        code, output = await runner("status")
        assert code == 0, output
        assert output.splitlines()[-1] == "all parts up", output
    finally:
        if (await runner("status"))[0] != 0:
            await runner("up")  # leave the system whole for the tests that follow
