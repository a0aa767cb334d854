"""A private NGINX for the fault tests, rendered from the repository's gateway templates."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from faultkit import KEPT_ENV, PACKAGES, PYTHON, ROOT, Stack

from servicekit.testing import wait_until
from servicekit.testing.processes import free_port


class Gateway:
    """A private NGINX rendered from gateway/nginx.conf.template + nginx.native.conf.template
    (as scripts/run_local.sh renders them), in front of the stack; auth is not running."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.port = stack, free_port()
        self.dir = stack.workdir / f"gateway-{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        def servers(port: int) -> str:
            return f"server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;"

        return {
            **{key: os.environ[key] for key in KEPT_ENV if key in os.environ},
            "RUN_DIR": str(self.dir),
            "NGINX_USER": getpass.getuser(),
            "GATEWAY_PORT": str(self.port),
            "WEB_ROOT": str(ROOT / "web"),
            "ACCESS_LOG": str(self.dir / "logs/gateway.log"),
            "SEAT_MAP_CACHE_DIR": str(self.dir / "nginx/seat_maps"),
            "AUTH_TOKEN_RATE": "100r/s",
            "AUTH_TOKEN_BURST": "200",
            "API_RATE": "5000r/s",
            "API_BURST": "10000",
            "AUTH_SERVERS": servers(free_port()),
            **{f"{name.upper()}_SERVERS": servers(self.stack.port(name)) for name in PACKAGES},
        }

    def _render(self, env: dict[str, str]) -> Path:
        for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "nginx" / folder).mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        render = [str(PYTHON), str(ROOT / "scripts/render_gateway.py")]
        gw, main = self.dir / "nginx/gateway.conf", self.dir / "nginx/nginx.conf"
        subprocess.run([*render, str(ROOT / "gateway/nginx.conf.template"), str(gw)], env=env, check=True)
        subprocess.run(
            [*render, str(ROOT / "gateway/nginx.native.conf.template"), str(main)], env=env, check=True
        )
        return main

    def _launch(self) -> None:
        conf = self._render(self._env())
        nginx = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin") or "nginx"
        base = [nginx, "-c", str(conf), "-p", str(self.dir / "nginx")]
        subprocess.run([*base, "-t", "-q"], check=True)
        self.process = subprocess.Popen(
            [*base, "-g", "daemon off;"], start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def start(self) -> None:
        await asyncio.to_thread(self._launch)
        async with httpx.AsyncClient(timeout=2) as client:

            async def up() -> bool:
                try:
                    return (await client.get(f"{self.url}/health")).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(up, within=15, what="the private gateway")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@contextlib.asynccontextmanager
async def running_gateway(stack: Stack) -> AsyncIterator[Gateway]:
    """A private NGINX rendered from gateway/*.template in front of ``stack``, stopped after."""
    gateway = Gateway(stack)
    try:
        await gateway.start()
        yield gateway
    finally:
        gateway.stop()
