"""PostgreSQL as the stack uses it during a scenario: connections held, and their backends' CPU.

A forked process samples ``pg_stat_activity`` of the system's database every ``interval``
(100 ms): how many client backends the stack holds (every user but the benchmark's own,
which connects as the superuser), how many of them are not idle, per user / application;
and each backend's CPU from /proc, so a connection opened and closed during the window
is counted too (to within one interval). Forked before the load starts, so the load's
worker processes are never forked from a threaded parent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

import asyncpg
from stack import cpu_seconds

BACKENDS = """
SELECT pid, usename, coalesce(application_name, '') AS application, state FROM pg_stat_activity
WHERE datname = current_database() AND usename <> current_user AND backend_type = 'client backend'
"""


@dataclass
class Watched:
    samples: int = 0
    max_held: int = 0  # most client backends of the stack at once
    max_busy: int = 0  # most of them not idle at once (active, idle in transaction, ...)
    max_by_client: dict[str, int] = field(default_factory=dict)  # "user / application" -> most at once
    backend_cpu: dict[str, float] = field(default_factory=dict)  # application -> CPU seconds in the window


class PgWatch:
    """``start()`` before the load (returns once the first sample is taken), ``stop()`` after it."""

    def __init__(self, dsn: str, interval: float = 0.1) -> None:
        self.dsn, self.interval = dsn, interval
        context = multiprocessing.get_context("fork")
        self._stop = context.Event()
        self._receive, self._send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_watch, args=(dsn, interval, self._stop, self._send), daemon=True
        )

    def start(self) -> None:
        self._process.start()
        if not self._receive.poll(15) or self._receive.recv() != "ready":
            self._process.kill()
            raise RuntimeError("pg_stat_activity sampler did not start")

    def stop(self) -> Watched:
        self._stop.set()
        watched = self._receive.recv() if self._receive.poll(15) else Watched()
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
        return watched


def _watch(dsn: str, interval: float, stop: Event, send: Connection) -> None:
    send.send(asyncio.run(_sample(dsn, interval, stop, send)))


async def _sample(dsn: str, interval: float, stop: Event, send: Connection) -> Watched:
    connection = await asyncpg.connect(dsn)
    watched = Watched()
    first: dict[int, float] = {}  # CPU seconds when first seen (0 for a connection opened later)
    last: dict[int, float] = {}
    application: dict[int, str] = {}
    by_client: Counter[str] = Counter()
    try:
        while True:
            rows = await connection.fetch(BACKENDS)
            watched.samples += 1
            watched.max_held = max(watched.max_held, len(rows))
            watched.max_busy = max(watched.max_busy, sum(1 for row in rows if row["state"] != "idle"))
            now = Counter(f"{row['usename']} / {row['application']}" for row in rows)
            by_client = by_client | now  # the max per key
            for row in rows:
                pid, used = row["pid"], cpu_seconds(row["pid"])
                first.setdefault(pid, used if watched.samples == 1 else 0.0)  # later: a new connection
                last[pid] = max(last.get(pid, 0.0), used)
                application[pid] = row["application"] or row["usename"]
            if watched.samples == 1:
                send.send("ready")
            if stop.is_set():
                break
            await asyncio.sleep(interval)
    finally:
        await connection.close()
    for pid in last:  # a last reading of the backends still there
        last[pid] = max(last[pid], cpu_seconds(pid))
    watched.max_by_client = dict(sorted(by_client.items()))
    cpu: dict[str, float] = defaultdict(float)
    for pid, used in last.items():
        cpu[application[pid]] += used - first[pid]
    watched.backend_cpu = dict(sorted(cpu.items()))
    return watched
