"""k8s/ builds with kustomize, validates against the Kubernetes schemas and the operators' CRDs,
and agrees with the code: settings, contract, and who may talk to whom."""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest

NAMESPACE = "movie-booking"
# The oldest Kubernetes the manifests promise to work on, and the newest the validator knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.utils.latest_version())
BUILDS = ["k8s", "k8s/base", "k8s/overlays/dev", "k8s/overlays/production"]
OVERLAYS = ["k8s/overlays/dev", "k8s/overlays/production"]


def schema_problems(docs: list[dict[str, Any]], validator: ModuleType, crds: Path) -> list[str]:
    """Core objects against the Kubernetes schemas (strict), custom resources against the CRDs."""
    schemas = validator.load_schemas(crds)
    problems = []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if validator.is_custom(doc):
            problems += [f"{name}: {p}" for p in validator.problems(doc, schemas)]
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path)
                problems.append(f"{name} (k8s {version}) {where}: {exc.message}")
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
def builds(render: Any) -> dict[str, list[dict[str, Any]]]:
    return {path: render(path) for path in BUILDS}


@pytest.fixture(scope="module")
def check(contract_services: list[Any], settings_env: dict[str, set[str]], process_env: set[str]) -> Any:
    def run(docs: list[dict[str, Any]]) -> list[str]:
        return k8s_problems(docs, contract_services, settings_env, process_env)

    return run


@pytest.fixture(scope="module")
def validate(crd_validator: ModuleType, crds_dir: Path) -> Any:
    def run(docs: list[dict[str, Any]]) -> list[str]:
        return schema_problems(docs, crd_validator, crds_dir)

    return run


def k8s_problems(
    docs: list[dict[str, Any]], contract: list[Any], settings_env: Any, process_env: set[str]
) -> list[str]:
    """Everything in a built manifest set that disagrees with the code and the contract
    (who may talk to whom: test_k8s_network.py; the data tier: test_k8s_data_tier.py)."""
    objects = index(docs)
    problems = [
        f"{kind}/{name} is not in namespace {NAMESPACE}"
        for (kind, name), doc in objects.items()
        if kind != "Namespace" and doc["metadata"].get("namespace") != NAMESPACE
    ]
    for svc in contract:
        problems += _deployment_problems(objects, svc, settings_env[svc.name] | process_env)
        problems += _companion_problems(objects, svc)
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


@pytest.mark.parametrize("path", BUILDS)
def test_kustomize_build_resolves_and_validates(path: str, builds: dict[str, Any], validate: Any) -> None:
    assert builds[path], f"{path} built nothing"
    assert validate(builds[path]) == []


@pytest.mark.parametrize("path", OVERLAYS)
def test_overlay_agrees_with_the_code(path: str, builds: dict[str, Any], check: Any) -> None:
    assert check(builds[path]) == []


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


@pytest.fixture()
def k8s_copy(repo_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(repo_root / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def test_a_broken_manifest_fails_schema_validation(
    kustomize_build: Any, k8s_copy: Path, validate: Any
) -> None:
    manifest = k8s_copy / "base/services/payment-service.yaml"
    manifest.write_text(
        manifest.read_text().replace("containerPort: 8004", "containerPort: eight-thousand-four")
    )
    problems = validate(kustomize_build(k8s_copy / "base"))
    assert any("Deployment/payment-service" in p and "containerPort" in p for p in problems), problems


def test_a_dangling_kustomization_fails_the_build(kustomize_build: Any, k8s_copy: Path) -> None:
    kustomization = k8s_copy / "components/data-single/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("redis.yaml", "redis-cluster.yaml"))
    with pytest.raises(AssertionError, match="redis-cluster.yaml"):
        kustomize_build(k8s_copy / "overlays/dev")


def test_a_valid_but_wrong_manifest_is_caught(kustomize_build: Any, k8s_copy: Path, check: Any) -> None:
    manifest = k8s_copy / "base/services/booking-service.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace("path: /health\n", "path: /ready\n")
        .replace("HOLD_TTL_SECONDS", "HOLD_MINUTES")
    )
    problems = check(kustomize_build(k8s_copy / "overlays/dev"))
    assert "booking-service: readinessProbe is not GET /health" in problems
    assert "booking-service: HOLD_MINUTES is not a field of its settings class" in problems
