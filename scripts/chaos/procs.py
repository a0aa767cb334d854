"""The processes a chaos run starts itself, each in a session (process group) of its own.

Every group id is also appended to ``<run folder>/pgids``: scripts/chaos.sh kills what is left
of them on its way out, so a run killed before its own teardown still leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
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

    def alive(self, name: str) -> bool:
        return self.started[name].poll() is None

    async def stop_all(self) -> None:
        """KILL every group: the nodes are throw-away (their folders go next), so nothing is
        worth a graceful stop, which takes a RabbitMQ node seconds."""
        for process in self.started.values():
            _signal_group(process, signal.SIGKILL)
        for process in self.started.values():
            await asyncio.to_thread(process.wait, 10)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
