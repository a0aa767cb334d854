"""Who may talk to whom in each overlay, worked out from every NetworkPolicy together.

Policies add up: a connection is allowed when some policy selecting the source allows it
out and some policy selecting the destination allows it in. Pods are known by the labels
their workload gives them; the operators' pods by the labels the operators document
(CloudNativePG: `cnpg.io/cluster: <cluster>`; RabbitMQ Cluster Operator:
`app.kubernetes.io/name: <cluster>`). Peers outside the namespace (namespaceSelector,
ipBlock: Prometheus, the operators, the API server, SMTP) are not modelled.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

OVERLAYS = ["k8s/overlays/dev", "k8s/overlays/production"]
# Workload names of the data tier (the same in both overlays) and the port each serves.
DATA_STORES = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}
# The dev overlay's mail catcher: notification-service's one extra peer there.
OVERLAY_PEERS = {"notification-service": {"mailpit"}}
# What the data tier's own members must reach of each other (replication, clustering).
PRODUCTION_PEER_PORTS = {"postgres": {5432, 8000}, "rabbitmq": {4369, 25672}, "redis": {6379, 26379}}
ALL_PORTS = frozenset(range(1, 65536))
Labels = dict[str, str]


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, Labels]:
    """Workload name -> the labels of its pods."""
    pods = {}
    for doc in docs:
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            pods[name] = doc["spec"]["template"]["metadata"].get("labels", {})
        elif kind == "Cluster":
            pods[name] = {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance"}
        elif kind == "RabbitmqCluster":
            pods[name] = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "rabbitmq"}
    return pods


def selects(selector: dict[str, Any], labels: Labels) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, values = labels.get(expression["key"]), expression.get("values", [])
        wanted = {
            "In": value in values,
            "NotIn": value not in values,
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }
        if not wanted[expression["operator"]]:
            return False
    return True


def rule_ports(rule: dict[str, Any]) -> frozenset[int]:
    if not rule.get("ports"):
        return ALL_PORTS
    ports: set[int] = set()
    for port in rule["ports"]:
        ports.update(range(port["port"], port.get("endPort", port["port"]) + 1))
    return frozenset(ports)


def open_ports(policies: list[dict[str, Any]], direction: str, pod: Labels, peer: Labels) -> frozenset[int]:
    """Ports the policies selecting `pod` open for it in `direction` ("Ingress"/"Egress") with `peer`."""
    selecting = [p["spec"] for p in policies if selects(p["spec"]["podSelector"], pod)]
    selecting = [spec for spec in selecting if direction in spec.get("policyTypes", ["Ingress"])]
    if not selecting:
        return ALL_PORTS
    ports: set[int] = set()
    for spec in selecting:
        for rule in spec.get(direction.lower(), []):
            peers = rule.get("from" if direction == "Ingress" else "to", [])
            in_namespace = [p for p in peers if set(p) == {"podSelector"}]
            if not peers or any(selects(p["podSelector"], peer) for p in in_namespace):
                ports |= rule_ports(rule)
    return frozenset(ports)


def reachable(docs: list[dict[str, Any]], source: str) -> dict[str, frozenset[int]]:
    """Workload -> the ports `source`'s pods may open connections to, for those with any."""
    pods = pod_labels(docs)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    found = {}
    for name, labels in pods.items():
        out = open_ports(policies, "Egress", pods[source], labels)
        inward = open_ports(policies, "Ingress", labels, pods[source])
        if out & inward:
            found[name] = out & inward
    return found


def network_problems(
    docs: list[dict[str, Any]], contract: list[Any], peers: dict[str, set[str]]
) -> list[str]:
    """Each service reaches the data tier and the services it calls, and is reached by the
    gateway and its callers: nothing more, nothing less."""
    names = set(pod_labels(docs))
    problems = []
    for svc in contract:
        reached = reachable(docs, svc.name)
        expected = set(DATA_STORES) | peers[svc.name] | (OVERLAY_PEERS.get(svc.name, set()) & names)
        if set(reached) - {svc.name} != expected:
            problems.append(f"{svc.name}: reaches {sorted(reached)}, expected {sorted(expected)}")
        problems += [
            f"{svc.name}: cannot reach {store} on {port}"
            for store, port in DATA_STORES.items()
            if port not in reached.get(store, ())
        ]
        callers = {name for name in names if svc.name in reachable(docs, name)} - {svc.name}
        expected = {"gateway"} | {name for name, called in peers.items() if svc.name in called}
        if callers != expected:
            problems.append(f"{svc.name}: reached by {sorted(callers)}, expected {sorted(expected)}")
    return problems


@pytest.mark.parametrize("path", OVERLAYS)
def test_services_reach_exactly_the_data_tier_and_the_services_they_call(
    path: str, render: Any, contract_services: list[Any], peers: dict[str, set[str]]
) -> None:
    assert network_problems(render(path), contract_services, peers) == []


@pytest.mark.parametrize("path", OVERLAYS)
def test_migration_jobs_reach_postgres_only(path: str, render: Any, contract_services: list[Any]) -> None:
    docs = render(path)
    for svc in contract_services:
        assert {name: sorted(ports) for name, ports in reachable(docs, f"{svc.name}-migrate").items()} == {
            "postgres": [5432]
        }


def test_production_data_tier_members_reach_each_other(render: Any) -> None:
    docs = render("k8s/overlays/production")
    for store, ports in PRODUCTION_PEER_PORTS.items():
        assert ports <= reachable(docs, store).get(store, frozenset()), store
    assert (
        "redis" in reachable(docs, "booking-service")
        and {6379, 26379} <= reachable(docs, "booking-service")["redis"]
    )


@pytest.mark.parametrize(
    ("manifest", "old", "new", "problem"),
    [
        # The selector of the StatefulSet days: no CloudNativePG pod carries it.
        (
            "components/data-ha/postgres-cluster.yaml",
            "cnpg.io/cluster: postgres",
            "app.kubernetes.io/name: postgres",
            "booking-service: cannot reach postgres on 5432",
        ),
        (
            "base/services/booking-service.yaml",
            "app.kubernetes.io/name: movie-service\n",
            "app.kubernetes.io/name: payment-service\n",
            "booking-service: reaches",
        ),
    ],
)
def test_a_wrong_policy_is_caught(
    manifest: str, old: str, new: str, problem: str, kustomize_build: Any, repo_root: Path, tmp_path: Path,
    contract_services: list[Any], peers: dict[str, set[str]],
) -> None:  # fmt: skip
    shutil.copytree(repo_root / "k8s", tmp_path / "k8s")
    path = tmp_path / "k8s" / manifest
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    docs = kustomize_build(tmp_path / "k8s/overlays/production")
    problems = network_problems(docs, contract_services, peers)
    assert any(p.startswith(problem) for p in problems), problems
