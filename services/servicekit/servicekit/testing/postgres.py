"""A private PostgreSQL primary with a synchronous streaming standby, for fault tests and
scripts/chaos: made with initdb and pg_basebackup in a folder of the caller's, on ports of the
caller's (never the machine's shared server), run with pg_ctl as the ``postgres`` OS user when
running as root, killed and torn down by the caller."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
RUN_AS = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
# Written to each node's postgresql.conf: a private, throw-away server (no fsync).
NODE_SETTINGS = "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"


def postgres_tools_missing() -> bool:
    """PostgreSQL's server binaries are not installed (or, as root, runuser is missing)."""
    return BIN is None or (os.geteuid() == 0 and shutil.which("runuser") is None)


def private_folder(prefix: str, parent: Path | None = None) -> Path:
    """A new folder the server's OS user owns (pytest's tmp_path is root's, mode 0700); a
    ``parent`` must let that user through."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    if RUN_AS:
        shutil.chown(folder, "postgres", "postgres")
    return folder


@dataclass
class StreamingPair:
    """Two nodes in ``folder``: ``primary`` and ``standby`` (the names of their data folders)."""

    folder: Path
    primary_port: int
    standby_port: int

    def run(self, tool: str, *args: str) -> None:
        assert BIN is not None
        subprocess.run([*RUN_AS, str(BIN / tool), *args], check=True, capture_output=True, timeout=60)

    def start(self, name: str, port: int, *settings: str) -> None:
        data, log = self.folder / name, self.folder / f"{name}.log"
        options = " ".join([f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1", *settings])
        self.run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start")

    def create(self, *settings: str) -> None:
        """Make and start both nodes; ``settings`` (``-c name=value``) go to both command lines."""
        primary = self.folder / "primary"
        self.run("initdb", "-D", str(primary), "-U", "postgres", "-A", "trust", "--no-sync")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(NODE_SETTINGS)
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        # A commit returns once the standby has it: a failover loses nothing committed. Given
        # on the primary's command line, not in its file, so the standby's copy does not carry
        # it: once promoted it has no standby to wait for (an HA manager would name the rest).
        self.start("primary", self.primary_port, "-c synchronous_standby_names='*'", *settings)
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
            "-D", str(self.folder / "standby"), "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        self.start("standby", self.standby_port, *settings)

    def postmaster(self, name: str) -> int | None:
        """The pid of the node's postmaster, if it runs (its postmaster.pid names it)."""
        pid_file = self.folder / name / "postmaster.pid"
        try:
            return int(pid_file.read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def kill(self, name: str) -> None:
        """The node is lost: the postmaster and every backend and WAL sender at once (a backend
        outlives a killed postmaster for a while, and would still commit)."""
        postmaster = self.postmaster(name)
        if postmaster is None:
            return
        children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout
        for pid in [postmaster, *map(int, children.split())]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue

    def kill_primary(self) -> None:
        self.kill("primary")

    def promote(self, name: str = "standby") -> None:
        """What an HA manager does once the primary is lost: the standby takes writes."""
        self.run("pg_ctl", "-D", str(self.folder / name), "-w", "promote")

    def stop_all(self) -> None:
        assert BIN is not None
        for name in ("standby", "primary"):
            if (self.folder / name / "postmaster.pid").exists():
                subprocess.run(
                    [*RUN_AS, str(BIN / "pg_ctl"), "-D", str(self.folder / name), "-m", "immediate", "stop"],
                    capture_output=True,
                    timeout=30,
                )
