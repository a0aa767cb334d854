"""A private RabbitMQ cluster for fault tests and scripts/chaos: nodes on AMQP and distribution
ports of the caller's (never 5672 and 25672, the machine's shared broker's), an epmd of its own on
a port of the caller's (never the machine's 4369), and a HOME with an Erlang cookie of its own, so
that rabbitmqctl, run with the cluster's environment, reaches these nodes only. Config, data and
logs (``<node>/log``) go to a folder of the caller's; each node and the epmd run in a process
group of their own, killed by the caller (``kill``, ``stop_all``), who removes the folder.

The nodes run as the current user from RabbitMQ's own scripts in /usr/lib/rabbitmq/bin (Debian's
/usr/sbin wrappers, run as root, switch to the rabbitmq user, whose HOME and cookie are the
shared broker's, and drop the environment), and read only the files written here: nothing of
/etc/rabbitmq. Blocking, like ``postgres.StreamingPair``: a caller on an event loop runs the
calls in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from servicekit.testing.processes import kill_group, kill_groups, wait_listening
from servicekit.testing.rabbit import list_queues

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
STARTUP_SECONDS = 90.0
# One scheduler per node, none spinning while idle: three nodes share two cores with the rest.
ERL_ARGS = "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"
# Nodes and rabbitmqctl alike: distribution on 127.0.0.1 only, and never an epmd daemon of their
# own (started by Erlang when the cluster's is not up yet, or gone: it would outlive the cluster).
ERL_FLAGS = "-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}"


def rabbitmq_missing() -> bool:
    """RabbitMQ's scripts or Erlang's epmd are not installed."""
    return not (RABBIT_BIN / "rabbitmq-server").exists() or shutil.which("epmd") is None


@dataclass(frozen=True)
class RabbitNode:
    name: str  # the Erlang node name, e.g. chaos1@localhost
    amqp_port: int
    dist_port: int

    @property
    def short(self) -> str:
        """The name before the host: the node's folder."""
        return self.name.split("@")[0]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def label(self) -> str:
        """How ``Broker.node`` names the node it is connected to."""
        return f"127.0.0.1:{self.amqp_port}"


class RabbitCluster:
    """Nodes ``<name>1@localhost``, ... on ``node_ports`` ((AMQP, distribution) each), in ``folder``;
    ``on_start(label, process)`` is told of every process group started (the epmd and each node)."""

    def __init__(
        self,
        folder: Path,
        epmd_port: int,
        node_ports: Sequence[tuple[int, int]],
        name: str = "rabbit",
        on_start: Callable[[str, subprocess.Popen[bytes]], None] | None = None,
    ) -> None:
        self.folder, self.epmd_port, self.on_start = folder, epmd_port, on_start
        self.nodes = [RabbitNode(f"{name}{i}@localhost", *ports) for i, ports in enumerate(node_ports, 1)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def env(self) -> dict[str, str]:
        """The environment of every process of the cluster's, rabbitmqctl's included."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.folder / "home"),  # its .erlang.cookie
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": ERL_FLAGS,
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            # rabbitmqctl's own node listens on any free port, not on RabbitMQ's shared 35672-35682.
            "RABBITMQ_CTL_DIST_PORT_MIN": "0",
            "RABBITMQ_CTL_DIST_PORT_MAX": "0",
        }

    def node_env(self, node: RabbitNode) -> dict[str, str]:
        folder = self.folder / node.short
        return {
            **self.env(),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_DIST_PORT": str(node.dist_port),  # else AMQP + 20000, maybe another's
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),  # .conf is appended
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),  # none
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(folder / "plugins-expand"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
        }

    def write_files(self) -> None:
        home = self.folder / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.folder / "rabbitmq-env.conf").write_text("")
        (self.folder / "enabled_plugins").write_text("[].\n")
        for node in self.nodes:
            (self.folder / node.short).mkdir()
            listener = f"listeners.tcp.1 = 127.0.0.1:{node.amqp_port}\n"
            (self.folder / node.short / "rabbitmq.conf").write_text(listener)

    def start(self) -> None:
        """The epmd, every node at once, then the others join the first. Raises when a node is
        not up within ``STARTUP_SECONDS`` (what started is left for ``stop_all``)."""
        self.write_files()
        epmd = shutil.which("epmd") or "epmd"
        self.spawn("epmd", [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"], self.env())
        wait_listening(self.epmd_port, within=10)
        for node in self.nodes:
            self.start_node(node)
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # a rabbitmqctl takes seconds to start
            list(pool.map(self.await_startup, self.nodes))
        seed, *others = self.nodes
        for node in others:  # one at a time: two joining at once can fail to start mnesia
            self.join(node, seed)

    def join(self, node: RabbitNode, seed: RabbitNode) -> None:
        self.ctl(node, "stop_app")
        self.ctl(node, "join_cluster", seed.name)
        self.ctl(node, "start_app")

    def spawn(self, label: str, command: list[str], env: dict[str, str]) -> None:
        with (self.folder / f"{label}.log").open("ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(  # in the folder: a node writes its crash dumps where it runs
                command, cwd=self.folder, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.processes[label] = process
        if self.on_start is not None:
            self.on_start(label, process)

    def start_node(self, node: RabbitNode) -> None:
        self.spawn(node.short, [str(RABBIT_BIN / "rabbitmq-server")], self.node_env(node))

    def await_startup(self, node: RabbitNode, within: float = STARTUP_SECONDS) -> None:
        """Until the node runs (rabbitmqctl fails at once while it has not registered with epmd)."""
        deadline = time.monotonic() + within
        while True:
            try:
                self.ctl(node, "await_startup", "--timeout", str(int(within)))
                return
            except RuntimeError:
                if time.monotonic() > deadline or not self.alive(node):
                    raise
                time.sleep(0.3)

    def ctl_command(self, node: RabbitNode) -> list[str]:
        return [str(RABBIT_BIN / "rabbitmqctl"), "-n", node.name]

    def ctl(self, node: RabbitNode, *args: str) -> str:
        """rabbitmqctl against one node; RuntimeError with its output when it fails."""
        done = subprocess.run(
            [*self.ctl_command(node), "-q", *args], cwd=self.folder, env=self.env(), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=STARTUP_SECONDS + 30,
        )  # fmt: skip
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()[-500:]
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name}: {output}")
        return done.stdout

    def list_queues(self, asked: RabbitNode, *columns: str) -> dict[str, list[str]]:
        """Every queue of the cluster, as ``asked`` (a running node) reports it: name -> columns."""
        return list_queues("", *columns, ctl=self.ctl_command(asked), env=self.env())

    def leaders(self, asked: RabbitNode) -> collections.Counter[str]:
        """How many quorum queues each node leads."""
        queues = self.list_queues(asked, "type", "leader").values()
        return collections.Counter(leader for kind, leader in queues if kind == "quorum")

    def queue_states(self) -> str:
        """Every queue's type, leader, members online and messages (for a failed run's log)."""
        asked = next(node for node in self.nodes if self.alive(node))
        columns = ("type", "leader", "online", "messages", "messages_unacknowledged")
        listed = self.list_queues(asked, *columns)
        rows = [["name", *columns], *([name, *values] for name, values in listed.items())]
        return "\n".join("\t".join(row) for row in rows)

    def alive(self, node: RabbitNode) -> bool:
        process = self.processes.get(node.short)
        return process is not None and process.poll() is None

    def kill(self, node: RabbitNode) -> None:
        """The node is lost: its whole process group (the Erlang VM and its helpers), at once."""
        if node.short in self.processes:
            kill_group(self.processes[node.short])

    def stop_all(self) -> None:
        """Kill every node, then the epmd (a node outliving it would start an epmd of its own)."""
        kill_groups(process for label, process in self.processes.items() if label != "epmd")
        kill_groups(process for label, process in self.processes.items() if label == "epmd")
