"""Private Redis servers and sentinels for fault tests and scripts/chaos: each a redis-server
process on a port and in a folder of the caller's (never the machine's shared Redis), logging
to ``folder/<name>.log``, killed and torn down by the caller."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def redis_missing() -> bool:
    return shutil.which("redis-server") is None


def redis_process(folder: Path, name: str, *options: str) -> subprocess.Popen[bytes]:
    """A redis-server (or, with ``--sentinel``, a sentinel) in a session of its own."""
    with (folder / f"{name}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            ["redis-server", *options], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def data_server(folder: Path, name: str, port: int, *options: str) -> subprocess.Popen[bytes]:
    """A server that keeps nothing on disk; ``--replicaof host port`` makes it a replica."""
    kept = ("--dir", str(folder), "--save", "", "--appendonly", "no", "--dbfilename", f"{name}.rdb")
    return redis_process(folder, name, "--port", str(port), "--bind", "127.0.0.1", *kept, *options)


def sentinel(
    folder: Path, name: str, port: int, master: tuple[str, int], quorum: int = 1
) -> subprocess.Popen[bytes]:
    """A sentinel watching ``master`` (name, port on 127.0.0.1): down after 500 ms unanswered,
    ``quorum`` sentinels must agree before one of them promotes a replica."""
    master_name, master_port = master
    conf = folder / f"{name}.conf"  # a sentinel rewrites its file: one of its own
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor {master_name} 127.0.0.1 {master_port} {quorum}\n"
        f"sentinel down-after-milliseconds {master_name} 500\n"
        f"sentinel failover-timeout {master_name} 3000\n"
    )
    return redis_process(folder, name, str(conf), "--sentinel")
