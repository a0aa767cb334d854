"""The processes a chaos run starts itself, each in a session (process group) of its own.

Every group id is also appended to ``<run folder>/pgids``: scripts/chaos.sh kills what is left
of them on its way out, so a run killed before its own teardown still leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path


class Processes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``command`` logging to ``<folder>/<name>.log``."""
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.adopt(name, process)

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Track a process started elsewhere in a session of its own."""
        self.started[name] = process
        with (self.folder / "pgids").open("a") as record:
            record.write(f"{process.pid}\n")

    def kill(self, name: str) -> None:
        """SIGKILL the whole group at once: the node is lost, with every child it had."""
        process = self.started[name]
        _signal_group(process, signal.SIGKILL)
        process.wait(10)
        _wait_group_gone(process.pid)

    def alive(self, name: str) -> bool:
        return self.started[name].poll() is None

    async def stop_all(self) -> None:
        """KILL every group: the nodes are throw-away (their folders go next), so nothing is
        worth a graceful stop, which takes a RabbitMQ node seconds."""
        for process in self.started.values():
            _signal_group(process, signal.SIGKILL)
        for process in self.started.values():
            await asyncio.to_thread(process.wait, 10)
            await asyncio.to_thread(_wait_group_gone, process.pid)


def _wait_group_gone(pgid: int, within: float = 10.0) -> None:
    """Until no process is left in the group: the leader (a start script) dies first, the
    server it started (beam.smp) a moment later, and only then are its ports free."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def listening_ports(low: int, high: int) -> list[int]:
    """TCP ports from ``low`` to ``high`` that something listens on (IPv4 and IPv6, Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            port, state = int(fields[1].rsplit(":", 1)[1], 16), fields[3]
            if state == "0A" and low <= port <= high:  # 0A: LISTEN
                found.add(port)
    return sorted(found)
