"""Private servers of tests and scripts: a port to give one, a process group to kill."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time


def free_port() -> int:
    """A port the kernel just had free on 127.0.0.1 (for a server started a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kill_group(process: subprocess.Popen[bytes], within: float = 10.0) -> None:
    """SIGKILL the process group ``process`` leads (started with ``start_new_session``), at once:
    the server is lost, with every child it had. Returns once the whole group is gone: the leader
    (a start script) dies first, the server it started (beam.smp) a moment later, and only then
    are its ports free."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(within)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
