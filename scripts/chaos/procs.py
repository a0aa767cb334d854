"""The processes of a chaos run's data tier (started by servicekit.testing's redis_servers and
rabbit_cluster), each in a session (process group) of its own.

Every group id is also appended to ``<run folder>/pgids``: scripts/chaos.sh kills what is left
of them on its way out, so a run killed before its own teardown still leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from servicekit.testing.processes import kill_group, kill_groups


class Processes:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        """Track a process started in a session of its own."""
        self.started[name] = process
        with (self.folder / "pgids").open("a") as record:
            record.write(f"{process.pid}\n")

    def kill(self, name: str) -> None:
        """The node is lost, with every child it had (the whole group, at once)."""
        kill_group(self.started[name])

    async def stop_all(self) -> None:
        """KILL every group: the nodes are throw-away (their folders go next), so nothing is
        worth a graceful stop, which takes a RabbitMQ node seconds."""
        await asyncio.to_thread(kill_groups, self.started.values())


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
