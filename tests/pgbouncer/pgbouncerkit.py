"""A private PgBouncer for tests: Debian's ``pgbouncer`` on a free 127.0.0.1 port, in
transaction pooling mode, in front of the test database of the shared PostgreSQL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from servicekit.testing.helpers import PG_HOST, PG_PORT, TEST_DATABASE, database_url
from servicekit.testing.processes import free_port, wait_listening

ROLES = ("auth_service", "movie_service", "booking_service", "payment_service", "notification_service")


@dataclass
class PgBouncer:
    """One private PgBouncer process and its directory."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes]

    def url(self, role: str) -> str:
        return database_url(role, port=str(self.port))

    def log(self) -> str:
        return (self.workdir / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail("pgbouncer is not installed: apt-get install pgbouncer (scripts/test.sh does)")
    return found


def _config(port: int, workdir: Path, pool_size: int, extra: dict[str, str]) -> str:
    settings = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(port),
        "unix_socket_dir": "",
        "auth_type": "md5",
        "auth_file": str(workdir / "users.txt"),
        "pool_mode": "transaction",
        "default_pool_size": str(pool_size),
        "max_client_conn": "500",
        **extra,
    }
    lines = ["[databases]", f"{TEST_DATABASE} = host={PG_HOST} port={PG_PORT}", "[pgbouncer]"]
    return "\n".join(lines + [f"{key} = {value}" for key, value in settings.items()]) + "\n"


def _wait_listening(bouncer: PgBouncer, within: float = 10.0) -> None:
    try:
        wait_listening(bouncer.port, within, alive=lambda: bouncer.process.poll() is None)
    except ChildProcessError:
        raise AssertionError(f"pgbouncer exited ({bouncer.process.returncode}):\n{bouncer.log()}") from None
    except TimeoutError:
        raise AssertionError(f"pgbouncer not listening after {within}s:\n{bouncer.log()}") from None


def start_pgbouncer(pool_size: int, **extra: str) -> PgBouncer:
    """A PgBouncer in transaction mode, ``pool_size`` server connections per service role."""
    binary = pgbouncer_binary()
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    workdir.chmod(0o755)  # readable by the user it drops to when started as root
    password = os.environ.get("TEST_DB_PASSWORD", "dev-only-db-password")
    port = free_port()
    (workdir / "users.txt").write_text("".join(f'"{role}" "{password}"\n' for role in ROLES))
    (workdir / "pgbouncer.ini").write_text(_config(port, workdir, pool_size, extra))
    for path in workdir.iterdir():
        path.chmod(0o644)
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]  # PgBouncer refuses to run as root
    with (workdir / "pgbouncer.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    bouncer = PgBouncer(port, workdir, process)
    try:
        _wait_listening(bouncer)
    except BaseException:
        bouncer.stop()
        raise
    return bouncer
