"""Each service's pyproject declares what its package imports itself, at the pins servicekit uses.

A service that imported fastapi, sqlalchemy or redis only because servicekit happens to
depend on them would break the day servicekit stops needing one; uv installs exactly what
the pyprojects declare (the images: ``uv sync --package <service>``).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(path.name for path in ROOT.glob("services/*-service"))
# Workspace packages: declared by name, without a pin (the distribution of `x_service` is `x-service`).
FIRST_PARTY = {"servicekit", *(name.replace("-", "_") for name in SERVICES)}
# Declared though no module imports them: what they are for.
NOT_IMPORTED = {
    "tzdata": "zoneinfo's time zone data where the OS has none (slim images)",
    "asyncpg": "SQLAlchemy's driver, loaded by the postgresql+asyncpg:// URL",
    "email-validator": "pydantic's EmailStr (auth's account schemas)",
    "python-multipart": "FastAPI's form parsing (auth's OAuth2 password flow)",
}
# servicekit.testing is the test harness (the pytest plugin): its imports are dev dependencies.
SERVICEKIT_HARNESS = "testing"


def requirements(pyproject: Path) -> dict[NormalizedName, Requirement]:
    """The project's dependencies by canonical name."""
    declared = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {canonicalize_name(req.name): req for req in map(Requirement, declared)}


def imported_modules(package: Path) -> set[str]:
    """The top-level modules the package's own files import (relative imports left out)."""
    modules = set()
    for path in package.rglob("*.py"):
        if package.name == "servicekit" and path.relative_to(package).parts[0] == SERVICEKIT_HARNESS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - {package.name}


@cache
def distributions_of(module: str) -> frozenset[NormalizedName]:
    """The installed distributions that provide a top-level module."""
    return frozenset(canonicalize_name(name) for name in packages_distributions().get(module, []))


def undeclared_imports(package: Path, declared: dict[NormalizedName, Requirement]) -> list[str]:
    problems = []
    for module in sorted(imported_modules(package)):
        providers = {canonicalize_name(module)} if module in FIRST_PARTY else distributions_of(module)
        if not providers:
            problems.append(f"{module}: imported, but no installed distribution provides it")
        elif not providers & set(declared):
            problems.append(f"{module}: imported, but none of {sorted(providers)} is declared")
    return problems


def unused_declarations(package: Path, declared: dict[NormalizedName, Requirement]) -> list[str]:
    provided = set()
    for module in imported_modules(package):
        provided |= {canonicalize_name(module)} if module in FIRST_PARTY else distributions_of(module)
    return [
        f"{name}: declared, never imported" for name in sorted(set(declared) - provided - set(NOT_IMPORTED))
    ]


def pin_mismatches(declared: dict[NormalizedName, Requirement]) -> list[str]:
    """Requirements that servicekit (or the root) pins differently: one version of each in the lock."""
    shared = requirements(ROOT / "services/servicekit/pyproject.toml")
    problems = []
    for name, req in declared.items():
        theirs = shared.get(name)
        if theirs is not None and (req.specifier, req.extras) != (theirs.specifier, theirs.extras):
            problems.append(f"{name}: {req} here, {theirs} in servicekit")
    return problems


def _package(service: str) -> Path:
    return ROOT / "services" / service / service.replace("-", "_")


@pytest.mark.parametrize("service", SERVICES)
def test_every_import_is_declared(service: str) -> None:
    declared = requirements(ROOT / "services" / service / "pyproject.toml")
    assert undeclared_imports(_package(service), declared) == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_declaration_is_imported_at_servicekits_pin(service: str) -> None:
    declared = requirements(ROOT / "services" / service / "pyproject.toml")
    assert unused_declarations(_package(service), declared) == []
    assert pin_mismatches(declared) == []


def test_a_missing_declaration_is_caught(tmp_path: Path) -> None:
    package = tmp_path / "demo_service"
    package.mkdir()
    (package / "client.py").write_text(
        "import json\nimport httpx\nfrom jose import jwt\nfrom . import config\nfrom servicekit import http\n"
    )
    declared = {canonicalize_name(r.name): r for r in map(Requirement, ["servicekit", "python-jose==3.5.0"])}
    assert undeclared_imports(package, declared) == ["httpx: imported, but none of ['httpx'] is declared"]
    assert pin_mismatches(declared) == [
        "python-jose: python-jose==3.5.0 here, python-jose[cryptography]==3.5.0 in servicekit"
    ]
    declared["orjson"] = Requirement("orjson==3.13.0")
    assert unused_declarations(package, declared) == ["orjson: declared, never imported"]


def test_servicekit_declares_what_it_imports() -> None:
    package = ROOT / "services/servicekit/servicekit"
    declared = requirements(ROOT / "services/servicekit/pyproject.toml")
    assert undeclared_imports(package, declared) == []
    assert unused_declarations(package, declared) == []
