"""The nodes of one RabbitMQ cluster: ``RABBITMQ_URL`` as a list, and a connection that walks it.

aio-pika's robust connection reconnects to the one URL it was made with, so a node that
dies would stop a service's events until that node returns. ``NodeListConnection`` is
the same robust connection (its channels, queues, consumers and publisher confirms are
restored after a reconnect), except that every lost connection and every failed attempt
sends the next attempt to the next node of the list: the first node that answers wins,
and a dead node is passed over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from yarl import URL

logger = logging.getLogger("servicekit.broker")
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671}


def parse_node_urls(value: str) -> list[URL]:
    """The AMQP URLs of a comma-separated list, each checked.

    An error names the item by its position, never by its text (which holds a password).
    """
    nodes = []
    for position, item in enumerate(value.split(","), start=1):
        url = _amqp_url(item.strip())
        if url is None:
            raise ValueError(f"RABBITMQ_URL item {position} is not an amqp:// or amqps:// URL with a host")
        nodes.append(url)
    return nodes


def _amqp_url(text: str) -> URL | None:
    try:
        url = URL(text)
        url.explicit_port  # noqa: B018  (a port out of range raises only when read)
    except ValueError:
        return None
    return url if url.scheme in DEFAULT_PORTS and url.host else None


def node_label(url: URL) -> str:
    """``host:port`` of a node: what logs may say about a URL (never its credentials)."""
    host = f"[{url.host}]" if ":" in (url.host or "") else url.host
    return f"{host}:{url.explicit_port or DEFAULT_PORTS[url.scheme]}"


class NodeListConnection(RobustConnection):
    """A robust connection to one cluster, given as the list of its nodes' URLs.

    Options in the first URL's query string (``heartbeat``, TLS files) apply to every node.
    """

    def __init__(self, nodes: Sequence[URL], **kwargs: Any) -> None:
        super().__init__(nodes[0], **kwargs)
        self.nodes = tuple(nodes)
        self._current = 0

    @property
    def node(self) -> str:
        """The node this connection is on (or tries next), as ``host:port``."""
        return node_label(self.nodes[self._current])

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # aio-pika calls this for a connection that was lost and for an attempt that failed;
        # the robust connection's next attempt reads ``self.url``. Moved first: the base
        # class wakes that attempt up.
        if not (self.close_called or self.is_closed) and len(self.nodes) > 1:
            left = self.node
            self._current = (self._current + 1) % len(self.nodes)
            self.url = self.nodes[self._current]
            logger.warning("RabbitMQ node %s lost or not reachable; trying %s next", left, self.node)
        await super()._on_connection_close(closing)
