"""k8s/ builds with kustomize, validates against the Kubernetes schemas, and agrees with the code."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

NAMESPACE = "movie-booking"
# The oldest Kubernetes the manifests promise to work on, and the newest the validator knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
DATA_STORES = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}
BUILDS = ["k8s", "k8s/base", "k8s/overlays/dev", "k8s/overlays/production"]


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build of {directory} failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def schema_problems(docs: list[dict[str, Any]]) -> list[str]:
    problems = []
    for doc in docs:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(
                    f"{doc['kind']}/{doc['metadata']['name']} (k8s {version}) {where}: {exc.message}"
                )
    return problems


def index(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.fixture(scope="module", autouse=True)
def cached_schemas() -> Iterator[None]:
    """kubernetes-validate re-reads its large schema files on every call: read each once (15x faster)."""
    utils = kubernetes_validate.utils
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(utils, "schema_contents", functools.lru_cache(maxsize=None)(utils.schema_contents))
        yield


@pytest.fixture(scope="module")
def builds(kubectl: str, repo_root: Path) -> dict[str, list[dict[str, Any]]]:
    return {path: kustomize(kubectl, repo_root / path) for path in BUILDS}


@pytest.fixture(scope="module")
def peers(contract_services: list[Any], settings_env: dict[str, set[str]]) -> dict[str, set[str]]:
    """Service -> the services it calls: a `<NAME>_SERVICE_URL` setting means it calls <name>-service."""
    names = {svc.name for svc in contract_services}
    calls = {}
    for svc in contract_services:
        urls = {re.sub(r"_SERVICE_URL$", "", v).lower() + "-service" for v in settings_env[svc.name]}
        calls[svc.name] = (urls & names) - {svc.name}
    return calls


@pytest.fixture(scope="module")
def check(
    contract_services: list[Any], settings_env: dict[str, set[str]], process_env: set[str], peers: Any
) -> Any:
    def run(docs: list[dict[str, Any]]) -> list[str]:
        return k8s_problems(docs, contract_services, settings_env, process_env, peers)

    return run


def k8s_problems(
    docs: list[dict[str, Any]], contract: list[Any], settings_env: Any, process_env: set[str], peers: Any
) -> list[str]:
    """Everything in a built manifest set that disagrees with the code and the contract."""
    objects = index(docs)
    problems = [
        f"{kind}/{name} is not in namespace {NAMESPACE}"
        for (kind, name), doc in objects.items()
        if kind != "Namespace" and doc["metadata"].get("namespace") != NAMESPACE
    ]
    for svc in contract:
        problems += _deployment_problems(objects, svc, settings_env[svc.name] | process_env)
        problems += _companion_problems(objects, svc)
        problems += _network_problems(objects, svc, peers)
    for store in DATA_STORES:
        sts = objects.get(("StatefulSet", store), {})
        if not sts.get("spec", {}).get("volumeClaimTemplates"):
            problems.append(f"{store}: no StatefulSet with a PersistentVolumeClaim")
    if ("NetworkPolicy", "default-deny-all") not in objects:
        problems.append("no default-deny NetworkPolicy")
    return problems


def _env_names(objects: dict[tuple[str, str], Any], container: dict[str, Any]) -> set[str]:
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        obj = objects.get((kind, ref["name"]), {})
        names |= set(obj.get("data") or {}) | set(obj.get("stringData") or {})
    return names


def _deployment_problems(objects: dict[tuple[str, str], Any], svc: Any, allowed_env: set[str]) -> list[str]:
    deployment = objects.get(("Deployment", svc.name))
    if deployment is None:
        return [f"{svc.name}: no Deployment"]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    problems = [
        f"{svc.name}: {name} is not a field of its settings class"
        for name in sorted(_env_names(objects, container) - allowed_env)
    ]
    if container.get("command", svc.start_command) != svc.start_command:
        problems.append(f"{svc.name}: command is not {svc.start_command}")
    if [p["containerPort"] for p in container.get("ports", [])] != [svc.port]:
        problems.append(f"{svc.name}: containerPort is not {svc.port}")
    for probe, path in (("readinessProbe", "/health"), ("livenessProbe", "/health/live")):
        if container.get(probe, {}).get("httpGet", {}).get("path") != path:
            problems.append(f"{svc.name}: {probe} is not GET {path}")
    resources = container.get("resources", {})
    if not (resources.get("requests") and resources.get("limits")):
        problems.append(f"{svc.name}: no resource requests and limits")
    if not pod["spec"].get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"{svc.name}: pod may run as root")
    if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
        problems.append(f"{svc.name}: privilege escalation not disabled")
    annotations = pod["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(
        svc.port
    ):
        problems.append(f"{svc.name}: no Prometheus scrape annotations for port {svc.port}")
    return problems


def _companion_problems(objects: dict[tuple[str, str], Any], svc: Any) -> list[str]:
    problems = []
    service = objects.get(("Service", svc.name), {})
    if [p["port"] for p in service.get("spec", {}).get("ports", [])] != [svc.port]:
        problems.append(f"{svc.name}: no Service on port {svc.port}")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        if (kind, svc.name) not in objects:
            problems.append(f"{svc.name}: no {kind}")
    job = objects.get(("Job", f"{svc.name}-migrate"), {})
    containers = job.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
    if containers[0].get("command") != ["python", "-m", "servicekit.migrations", svc.package]:
        problems.append(f"{svc.name}: no migration Job running servicekit.migrations {svc.package}")
    return problems


def _selected_names(peers: list[dict[str, Any]]) -> set[str]:
    names = set()
    for peer in peers:
        labels = peer.get("podSelector", {}).get("matchLabels", {})
        names.add(labels.get("app.kubernetes.io/name") or labels.get("movie-booking/role", "?"))
    return names


def _network_problems(objects: dict[tuple[str, str], Any], svc: Any, peers: dict[str, set[str]]) -> list[str]:
    policy = objects.get(("NetworkPolicy", svc.name))
    if policy is None:
        return [f"{svc.name}: no NetworkPolicy"]
    spec = policy["spec"]
    callers = {name for name, called in peers.items() if svc.name in called}
    ingress = _selected_names([p for rule in spec.get("ingress", []) for p in rule.get("from", [])]) - {"?"}
    egress = _selected_names([p for rule in spec.get("egress", []) for p in rule.get("to", [])]) - {"?"}
    problems = []
    if ingress != {"gateway"} | callers:
        problems.append(f"{svc.name}: reachable from {sorted(ingress)}, expected gateway + {sorted(callers)}")
    if egress != set(DATA_STORES) | peers[svc.name]:
        problems.append(
            f"{svc.name}: reaches {sorted(egress)}, expected data stores + {sorted(peers[svc.name])}"
        )
    return problems


@pytest.mark.parametrize("path", BUILDS)
def test_kustomize_build_resolves_and_validates(path: str, builds: dict[str, list[dict[str, Any]]]) -> None:
    assert builds[path], f"{path} built nothing"
    assert schema_problems(builds[path]) == []


def test_base_agrees_with_the_code(builds: dict[str, list[dict[str, Any]]], check: Any) -> None:
    assert check(builds["k8s/base"]) == []


def test_peer_calls_follow_the_contract(peers: dict[str, set[str]]) -> None:
    # docs/contracts.md "Internal endpoints": booking -> movie, movie -> booking, payment -> booking.
    assert {name: called for name, called in peers.items() if called} == {
        "booking-service": {"movie-service"},
        "movie-service": {"booking-service"},
        "payment-service": {"booking-service"},
    }


def test_k8s_root_deploys_the_dev_overlay(builds: dict[str, list[dict[str, Any]]]) -> None:
    assert builds["k8s"] == builds["k8s/overlays/dev"]
    deployments = [d for d in builds["k8s"] if d["kind"] == "Deployment"]
    assert {d["spec"]["replicas"] for d in deployments} == {1}


def test_production_ships_no_placeholder_secret(builds: dict[str, list[dict[str, Any]]]) -> None:
    production = index(builds["k8s/overlays/production"])
    assert [name for kind, name in production if kind == "Secret"] == []
    assert production[("ConfigMap", "movie-booking-common")]["data"]["ENVIRONMENT"] == "production"
    images = {
        c["image"]
        for d in production.values()
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert all(image.startswith("registry.example.com/") and image.endswith(":2.0.0") for image in images), (
        images
    )


def test_gateway_config_renders_every_template_variable(builds: dict[str, Any], repo_root: Path) -> None:
    config = index(builds["k8s/base"])[("ConfigMap", "gateway-config")]["data"]
    template = (repo_root / "gateway/nginx.conf.template").read_text()
    assert set(re.findall(r"\$\{([A-Z_]+)\}", template)) - set(config) == set()
    dockerfile = (repo_root / "k8s/base/gateway/Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.MULTILINE):
        assert (repo_root / source).exists(), source


def test_postgres_init_script_is_the_one_in_database(repo_root: Path) -> None:
    copy = (repo_root / "k8s/base/data/01-roles-and-schemas.sh").read_text()
    assert copy == (repo_root / "database/init/01-roles-and-schemas.sh").read_text(), (
        "k8s/base/data/01-roles-and-schemas.sh must be a copy of database/init/01-roles-and-schemas.sh"
    )


@pytest.fixture()
def k8s_copy(repo_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(repo_root / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def test_a_broken_manifest_fails_schema_validation(kubectl: str, k8s_copy: Path) -> None:
    manifest = k8s_copy / "base/services/payment-service.yaml"
    manifest.write_text(
        manifest.read_text().replace("containerPort: 8004", "containerPort: eight-thousand-four")
    )
    problems = schema_problems(kustomize(kubectl, k8s_copy / "base"))
    assert any("Deployment/payment-service" in p and "containerPort" in p for p in problems), problems


def test_a_dangling_kustomization_fails_the_build(kubectl: str, k8s_copy: Path) -> None:
    kustomization = k8s_copy / "base/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("data/redis.yaml", "data/redis-cluster.yaml"))
    with pytest.raises(AssertionError, match="redis-cluster.yaml"):
        kustomize(kubectl, k8s_copy / "overlays/production")


def test_a_valid_but_wrong_manifest_is_caught(kubectl: str, k8s_copy: Path, check: Any) -> None:
    manifest = k8s_copy / "base/services/booking-service.yaml"
    text = (
        manifest.read_text()
        .replace("path: /health\n", "path: /ready\n")
        .replace("HOLD_TTL_SECONDS", "HOLD_MINUTES")
    )
    manifest.write_text(
        text.replace("app.kubernetes.io/name: movie-service\n", "app.kubernetes.io/name: payment-service\n")
    )
    problems = check(kustomize(kubectl, k8s_copy / "base"))
    assert "booking-service: readinessProbe is not GET /health" in problems
    assert "booking-service: HOLD_MINUTES is not a field of its settings class" in problems
    assert any(p.startswith("booking-service: reaches") for p in problems), problems
