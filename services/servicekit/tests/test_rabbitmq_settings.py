"""RABBITMQ_URL as a node list, and the arguments of a consumer's queues (quorum or classic)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from servicekit.config import ServiceSettings
from servicekit.events.cluster import node_label, parse_node_urls
from servicekit.events.queues import ConsumerQueues, consumer_declarations


def test_a_node_list_keeps_its_order_and_each_node_is_labelled_without_credentials() -> None:
    nodes = parse_node_urls(
        "amqp://u:secret@rabbit-0:5672/, amqps://u:secret@rabbit-1/,amqp://[::1]:27673/vh"
    )
    assert [node_label(url) for url in nodes] == ["rabbit-0:5672", "rabbit-1:5671", "[::1]:27673"]
    assert nodes[2].path == "/vh"


def test_one_url_is_a_list_of_one() -> None:
    assert [node_label(url) for url in parse_node_urls("amqp://guest:guest@127.0.0.1/")] == ["127.0.0.1:5672"]


@pytest.mark.parametrize(
    ("listed", "position"),
    [
        ("http://u:secret@host/", 1),
        ("amqp://u:secret@a/,", 2),
        ("amqp://u:secret@a/,,amqp://u:secret@b/", 2),
        ("amqp://u:secret@a/,amqp://u:secret@b:99999/", 2),
        ("amqp://u:secret@a:port/", 1),
        ("rabbit-0:5672", 1),
        ("amqp:///vhost", 1),
    ],
)
def test_a_malformed_list_is_refused_naming_the_item_but_never_the_password(
    listed: str, position: int
) -> None:
    with pytest.raises(ValidationError, match=f"RABBITMQ_URL item {position} is not an amqp") as caught:
        ServiceSettings(rabbitmq_url=listed)
    assert "secret" not in str(caught.value)


def test_quorum_queues_by_default_dead_lettering_at_least_once_with_a_delivery_limit() -> None:
    settings = ServiceSettings()
    dlq, retry, main = consumer_declarations(ConsumerQueues("p.svc.events"), settings)
    assert (dlq.name, retry.name, main.name) == ("p.svc.events.dlq", "p.svc.events.retry", "p.svc.events")
    assert dlq.arguments == {"x-queue-type": "quorum"}
    at_least_once = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
    assert retry.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "p.svc.events",
        **at_least_once,
    }
    assert main.arguments == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "p.svc.events.dlq",
        **at_least_once,
        "x-delivery-limit": settings.rabbitmq_delivery_limit,
    }


def test_classic_queues_keep_the_arguments_they_always_had() -> None:
    settings = ServiceSettings(rabbitmq_quorum_queues=False)
    dlq, retry, main = consumer_declarations(ConsumerQueues("svc.events"), settings)
    assert dlq.arguments == {}
    assert retry.arguments == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "svc.events"}
    assert main.arguments == {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "svc.events.dlq"}


@pytest.mark.parametrize("quorum", [True, False])
def test_throw_away_queues_expire_whatever_their_type(quorum: bool) -> None:
    settings = ServiceSettings(rabbitmq_quorum_queues=quorum, queue_expires_ms=60_000)
    declarations = consumer_declarations(ConsumerQueues("svc.events"), settings)
    assert [d.arguments["x-expires"] for d in declarations] == [60_000] * 3


def test_the_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_URL", "amqp://u:p@rabbit-0/,amqp://u:p@rabbit-1/")
    monkeypatch.setenv("RABBITMQ_QUORUM_QUEUES", "false")
    monkeypatch.setenv("RABBITMQ_DELIVERY_LIMIT", "7")
    settings = ServiceSettings()
    assert len(parse_node_urls(settings.rabbitmq_url.get_secret_value())) == 2
    assert (settings.rabbitmq_quorum_queues, settings.rabbitmq_delivery_limit) == (False, 7)
