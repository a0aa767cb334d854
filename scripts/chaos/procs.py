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
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(10)

    def alive(self, name: str) -> bool:
        return self.started[name].poll() is None

    async def stop_all(self) -> None:
        """TERM every group, then KILL what is left of each (after at most 5 s)."""
        for process in self.started.values():
            _signal_group(process, signal.SIGTERM)
        for process in self.started.values():
            try:
                await asyncio.to_thread(process.wait, 5)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)  # a child of the group may outlive its leader
            await asyncio.to_thread(process.wait, 5)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
