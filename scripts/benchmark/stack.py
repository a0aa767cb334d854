"""The stack's processes and the CPU they spend, read from /proc (Linux).

A process's CPU is ``utime + stime + cutime + cstime`` of /proc/<pid>/stat (its threads
and its reaped children included), summed over its live descendants. The processes:

- own: every pid file of the runner (``<run dir>/pids/*.pid``: the services, booking's
  replicas) but the mail catcher, and NGINX (``nginx.pid``, master and workers);
- the PostgreSQL backends serving the system's database: watched by ``pgwatch.py``, which
  sees connections come and go;
- shared with every other user of the machine: RabbitMQ (``beam.smp``), Redis
  (``redis-server``) and PostgreSQL's own server processes (WAL writer, checkpointer,
  background writer, autovacuum). Their rate while the stack is idle is measured just
  before, so their share can be shown less that background.

The load client and the mail catcher are not part of the stack and are never counted.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
POSTGRES_SERVER = ("walwriter", "checkpointer", "background writer", "autovacuum")


@dataclass(frozen=True)
class Group:
    name: str
    roots: tuple[int, ...]  # each counted with its live descendants
    shared: bool = False  # a server other sessions use too


def cpu_seconds(pid: int) -> float:
    """CPU seconds of one process, its threads and its reaped children (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is field 3 (state) of proc(5)
    return sum(int(value) for value in fields[11:15]) / TICKS


def children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    return children


def tree(pid: int, children: dict[int, list[int]]) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def stack_groups(run_dir: Path) -> list[Group]:
    """The runner's own processes (mail catcher excluded), then the shared servers."""
    groups = []
    for pid_file in sorted((run_dir / "pids").glob("*.pid")):
        if pid_file.stem != "mail" and (pid := _read_pid(pid_file)):
            groups.append(Group(pid_file.stem, (pid,)))
    if (nginx := run_dir / "nginx.pid").exists() and (pid := _read_pid(nginx)):
        groups.append(Group("nginx (gateway)", (pid,)))
    by_command = _pids_by_command()
    groups.append(Group("rabbitmq (beam.smp)", tuple(by_command.get("beam.smp", [])), shared=True))
    groups.append(Group("redis-server", tuple(by_command.get("redis-server", [])), shared=True))
    groups.append(Group("postgres server processes", tuple(_postgres_server_pids()), shared=True))
    return groups


def snapshot(groups: list[Group]) -> dict[str, float]:
    """CPU seconds of each group now."""
    children = children_by_parent()
    return {
        group.name: sum(cpu_seconds(pid) for root in group.roots for pid in tree(root, children))
        for group in groups
    }


def idle_rates(groups: list[Group], seconds: float) -> dict[str, float]:
    """CPU seconds per second of the shared groups over ``seconds`` of (the stack's) quiet."""
    shared = [group for group in groups if group.shared]
    before, started = snapshot(shared), time.monotonic()
    time.sleep(seconds)
    after, elapsed = snapshot(shared), time.monotonic() - started
    return {name: max(0.0, after[name] - before[name]) / elapsed for name in before}


def _read_pid(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _pids_by_command() -> dict[str, list[int]]:
    found: dict[str, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[Path(f"/proc/{entry}/comm").read_text().strip()].append(int(entry))
            except OSError:
                continue
    return found


def _postgres_server_pids() -> list[int]:
    """PostgreSQL's own background processes (not the backends of any connection)."""
    found = []
    for pid in _pids_by_command().get("postgres", []):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(part in title for part in POSTGRES_SERVER):
            found.append(pid)
    return found
