"""A private three-node RabbitMQ cluster: own node names, AMQP and distribution ports, data and
log folders, its own epmd and a HOME with its own Erlang cookie (so rabbitmqctl, run with the
same environment, talks to these nodes and never to the machine's shared broker).

The nodes run as the current user from RabbitMQ's own scripts (/usr/lib/rabbitmq/bin, not the
Debian wrapper, which switches to the rabbitmq user and drops the environment). Each node reads
only the files written here: no system rabbitmq-env.conf, rabbitmq.conf or plugins.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from chaos.procs import Processes

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
# One scheduler per node, and none spinning while idle: three nodes share two cores with the rest.
ERL_ARGS = "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none"


@dataclass(frozen=True)
class Node:
    name: str  # chaos1@localhost
    amqp_port: int
    dist_port: int

    @property
    def short(self) -> str:
        """The name before the host: its folder and its process's name."""
        return self.name.split("@")[0]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"


class RabbitCluster:
    def __init__(self, folder: Path, procs: Processes, base_port: int) -> None:
        """Ports from ``base_port``: epmd, then per node i (1-3) AMQP base+i and distribution base+10+i;
        rabbitmqctl's own distribution ports are base+20..base+29."""
        self.folder, self.procs, self.base_port = folder, procs, base_port
        self.nodes = [Node(f"chaos{i}@localhost", base_port + i, base_port + 10 + i) for i in (1, 2, 3)]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def _env(self) -> dict[str, str]:
        env_file, plugins = self.folder / "rabbitmq-env.conf", self.folder / "enabled_plugins"
        return {
            **os.environ,
            "HOME": str(self.folder / "home"),
            "ERL_EPMD_PORT": str(self.base_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(env_file),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(self.base_port + 20),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(self.base_port + 29),
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",  # nodes and rabbitmqctl alike
        }

    def _node_env(self, node: Node) -> dict[str, str]:
        folder = self.folder / node.short
        return {
            **self._env(),
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_DIST_PORT": str(node.dist_port),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),  # .conf is appended
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(folder / "plugins-expand"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
        }

    def _write_files(self) -> None:
        home = self.folder / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.folder / "rabbitmq-env.conf").write_text("")
        (self.folder / "enabled_plugins").write_text("[].\n")
        for node in self.nodes:
            folder = self.folder / node.short
            folder.mkdir()
            (folder / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{node.amqp_port}\n")

    async def start(self) -> None:
        """epmd, three nodes at once, then nodes 2 and 3 join node 1."""
        self._write_files()
        epmd = shutil.which("epmd") or "epmd"
        self.procs.start("epmd", [epmd, "-port", str(self.base_port), "-address", "127.0.0.1"], self._env())
        await asyncio.sleep(0.3)  # epmd binds at once; the nodes register with it first thing
        for node in self.nodes:
            self.start_node(node)
        await asyncio.gather(*(self.await_startup(node) for node in self.nodes))
        for node in self.nodes[1:]:
            await self.ctl(node, "stop_app")
            await self.ctl(node, "join_cluster", self.nodes[0].name)
            await self.ctl(node, "start_app")

    def start_node(self, node: Node) -> None:
        command = [str(RABBIT_BIN / "rabbitmq-server")]
        self.procs.start(node.short, command, self._node_env(node))

    async def await_startup(self, node: Node, within: float = 90) -> None:
        """Until the node runs (rabbitmqctl fails at once while it has not registered with epmd)."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            try:
                await self.ctl(node, "await_startup", "--timeout", "30")
                return
            except RuntimeError:
                if asyncio.get_running_loop().time() > deadline or not self.procs.alive(node.short):
                    raise
                await asyncio.sleep(0.5)

    async def ctl(self, node: Node, *args: str) -> str:
        """rabbitmqctl against one node; RuntimeError with its output when it fails."""
        process = await asyncio.create_subprocess_exec(
            str(RABBIT_BIN / "rabbitmqctl"), "-q", "-n", node.name, *args, env=self._env(),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {node.name}: {output.decode()[-500:]}")
        return output.decode()

    async def leaders(self, asked: Node) -> collections.Counter[str]:
        """How many quorum queues each node leads (asked of ``asked``, a running node)."""
        listing = await self.ctl(asked, "list_queues", "name", "type", "leader", "--no-table-headers")
        found: collections.Counter[str] = collections.Counter()
        for line in listing.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "quorum":
                found[parts[2]] += 1
        return found

    async def queue_states(self) -> str:
        """Every queue's type, leader, members online and messages (for a failed scenario's log)."""
        running = [node for node in self.nodes if self.procs.alive(node.short)]
        columns = ("name", "type", "leader", "online", "messages", "messages_unacknowledged")
        return await self.ctl(running[0], "list_queues", *columns)

    def kill(self, node: Node) -> None:
        self.procs.kill(node.short)
