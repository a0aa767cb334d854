"""A consumer's queues and the arguments they are declared with (quorum or classic).

Quorum queues (``RABBITMQ_QUORUM_QUEUES``, the default) are replicated on the
cluster's nodes: a message a publisher saw confirmed survives the loss of any one node.
Their dead-lettering is at-least-once: a message leaves ``C.retry`` for ``C`` (back-off
over) or ``C`` for ``C.dlq`` only once the target queue has confirmed it; RabbitMQ's
default (at-most-once) drops it if the target cannot take it at that moment, as while
its leader is being re-elected after a node loss. At-least-once requires the
``reject-publish`` overflow, which changes nothing here: no queue has a length limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servicekit.config import ServiceSettings

QueueArguments = dict[str, Any]


@dataclass(frozen=True)
class QueueDeclaration:
    name: str
    arguments: QueueArguments


@dataclass(frozen=True)
class ConsumerQueues:
    """The names of a consumer's queues, from its main queue ``C``."""

    main: str

    @property
    def retry(self) -> str:
        return f"{self.main}.retry"

    @property
    def dlq(self) -> str:
        return f"{self.main}.dlq"

    @property
    def holding(self) -> str:
        """Where messages wait while the queues are re-declared (servicekit/events/migration.py)."""
        return f"{self.main}.migrating"

    @property
    def lock(self) -> str:
        return f"{self.main}.migration-lock"


def consumer_declarations(queues: ConsumerQueues, settings: ServiceSettings) -> list[QueueDeclaration]:
    """The dead-letter, retry and main queues, in that order (each one's target comes first)."""
    base = base_arguments(settings)
    expires = {"x-expires": settings.queue_expires_ms} if settings.queue_expires_ms else {}
    retry = {**base, **expires, **_dead_letter_to(queues.main, settings)}
    main = {**base, **expires, **_dead_letter_to(queues.dlq, settings)}
    if settings.rabbitmq_quorum_queues:
        main["x-delivery-limit"] = settings.rabbitmq_delivery_limit
    return [
        QueueDeclaration(queues.dlq, {**base, **expires}),
        QueueDeclaration(queues.retry, retry),
        QueueDeclaration(queues.main, main),
    ]


def base_arguments(settings: ServiceSettings) -> QueueArguments:
    """The queue type: quorum, or classic (declared as before quorum queues, with no type)."""
    return {"x-queue-type": "quorum"} if settings.rabbitmq_quorum_queues else {}


def _dead_letter_to(target: str, settings: ServiceSettings) -> QueueArguments:
    arguments: QueueArguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target}
    if settings.rabbitmq_quorum_queues:
        arguments |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    return arguments
