"""Private servers of tests and scripts: a port to give one, a process group to kill."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable


def free_port() -> int:
    """A port the kernel just had free on 127.0.0.1 (for a server started a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, within: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``. A synchronous poll with
    a deadline, for starting a server (never called on an event loop: async callers use a thread).
    Raises TimeoutError after ``within`` seconds, ChildProcessError once ``alive()`` is false."""
    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if not alive():
                raise ChildProcessError(f"the server meant to listen on {port} exited") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {port} after {within} s") from None
            time.sleep(0.05)


def kill_group(process: subprocess.Popen[bytes], within: float = 10.0) -> None:
    """SIGKILL the process group ``process`` leads (started with ``start_new_session``): the
    server is lost, with every child it had. Returns once the whole group is gone."""
    kill_groups([process], within)


def kill_groups(processes: Iterable[subprocess.Popen[bytes]], within: float = 10.0) -> None:
    """SIGKILL every group at once, then wait until each is gone: the leader (a start script)
    dies first, the server it started (beam.smp) is reaped a moment later, and only then are
    its ports surely free."""
    killed = list(processes)
    for process in killed:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + within
    for process in killed:
        process.wait(within)
        while time.monotonic() < deadline and _group_exists(process.pid):
            time.sleep(0.05)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
