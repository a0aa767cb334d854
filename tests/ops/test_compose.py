"""docker-compose.yml agrees with the code: settings, ports, start commands, health, files."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

INFRA_IMAGES = {"postgres": "postgres:15", "redis": "redis:7", "rabbitmq": "rabbitmq:3.12-management"}
# What docs/contracts.md ("The system") says compose publishes, besides the services' own ports.
PUBLISHED = {
    "gateway": 80,
    "rabbitmq": 15672,
    "grafana": 3000,
    "prometheus": 9090,
    "mailpit": 8025,
    "jaeger": 16686,
}


@pytest.fixture(scope="module")
def compose(repo_root: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((repo_root / "docker-compose.yml").read_text())
    return loaded


@pytest.fixture(scope="module")
def check(
    repo_root: Path, contract_services: list[Any], settings_env: dict[str, set[str]], process_env: set[str]
) -> Any:
    def run(compose: dict[str, Any]) -> list[str]:
        return compose_problems(compose, repo_root, contract_services, settings_env, process_env)

    return run


def compose_problems(
    compose: dict[str, Any],
    root: Path,
    contract: list[Any],
    settings_env: dict[str, set[str]],
    process_env: set[str],
) -> list[str]:
    """Everything in a parsed docker-compose.yml that disagrees with the repository."""
    services = compose.get("services", {})
    problems = []
    for svc in contract:
        problems += _app_problems(services, svc, settings_env[svc.name] | process_env)
        problems += _migration_problems(services, svc, settings_env[svc.name])
    problems += _wiring_problems(compose, root)
    problems += _infra_problems(services, root)
    return problems


def _ports(entry: dict[str, Any]) -> set[str]:
    return {str(p) for p in entry.get("ports", [])}


def _app_problems(services: dict[str, Any], svc: Any, allowed_env: set[str]) -> list[str]:
    entry = services.get(svc.name)
    if entry is None:
        return [f"{svc.name}: missing"]
    problems = []
    build = entry.get("build", {})
    if build.get("context") != "." or build.get("dockerfile") != svc.dockerfile:
        problems.append(f"{svc.name}: build is not {svc.dockerfile} from the repository root")
    if build.get("args") != svc.build_args:
        problems.append(f"{svc.name}: build args {build.get('args')} are not {svc.build_args}")
    if entry.get("command") not in (None, svc.start_command):
        problems.append(f"{svc.name}: command {entry['command']} is not {svc.start_command}")
    env = entry.get("environment", {})
    for name in sorted(set(env) - allowed_env):
        problems.append(f"{svc.name}: {name} is not a field of its settings class")
    if str(env.get("PORT")) != str(svc.port) or f"{svc.port}:{svc.port}" not in _ports(entry):
        problems.append(f"{svc.name}: port is not {svc.port} as docs/contracts.md says")
    if f"//{svc.package}:" not in str(env.get("DATABASE_URL", "")):
        problems.append(f"{svc.name}: DATABASE_URL does not use its own role {svc.package}")
    test = " ".join(entry.get("healthcheck", {}).get("test", []))
    if f"127.0.0.1:{svc.port}/health" not in test:
        problems.append(f"{svc.name}: no healthcheck on :{svc.port}/health")
    deps = entry.get("depends_on", {})
    migrate = svc.name.replace("-service", "-migrate")
    if deps.get(migrate, {}).get("condition") != "service_completed_successfully":
        problems.append(f"{svc.name}: does not wait for {migrate} to complete")
    for infra in ("postgres", "redis", "rabbitmq"):
        if deps.get(infra, {}).get("condition") != "service_healthy":
            problems.append(f"{svc.name}: does not wait for {infra} to be healthy")
    return problems


def _migration_problems(services: dict[str, Any], svc: Any, allowed_env: set[str]) -> list[str]:
    name = svc.name.replace("-service", "-migrate")
    entry = services.get(name)
    if entry is None:
        return [f"{name}: missing (the migration one-shot)"]
    problems = []
    expected = ["python", "-m", "servicekit.migrations", svc.package]
    if entry.get("command") != expected:
        problems.append(f"{name}: command is not {expected}")
    if entry.get("image") != services.get(svc.name, {}).get("image"):
        problems.append(f"{name}: not the image of {svc.name}")
    if entry.get("build") != services.get(svc.name, {}).get("build"):
        problems.append(f"{name}: not built as {svc.name} is")
    if entry.get("restart") != "no":
        problems.append(f"{name}: a one-shot must not restart")
    for env in sorted(set(entry.get("environment", {})) - allowed_env):
        problems.append(f"{name}: {env} is not a field of {svc.name}'s settings class")
    return problems


def _wiring_problems(compose: dict[str, Any], root: Path) -> list[str]:
    services = compose.get("services", {})
    volumes = set(compose.get("volumes") or {})
    problems = []
    for name, entry in services.items():
        for dep, spec in (entry.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name}: depends on unknown service {dep}")
            elif spec.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name}: waits for {dep} to be healthy but {dep} has no healthcheck")
        build = entry.get("build")
        if build and not (root / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).exists():
            problems.append(f"{name}: build context/Dockerfile does not exist")
        for mount in entry.get("volumes", []):
            source = str(mount).split(":")[0]
            if source.startswith("."):
                if not (root / source).exists():
                    problems.append(f"{name}: mounted {source} does not exist")
            elif source not in volumes:
                problems.append(f"{name}: volume {source} is not declared")
    return problems


def _infra_problems(services: dict[str, Any], root: Path) -> list[str]:
    problems = []
    for name, image in INFRA_IMAGES.items():
        if not str(services.get(name, {}).get("image", "")).startswith(image):
            problems.append(f"{name}: image is not {image}")
    for name, port in PUBLISHED.items():
        if not any(p.split(":")[0] == str(port) for p in _ports(services.get(name, {}))):
            problems.append(f"{name}: port {port} is not published")
    postgres = services.get("postgres", {})
    if "./database/init:/docker-entrypoint-initdb.d:ro" not in postgres.get("volumes", []):
        problems.append("postgres: database/init is not mounted as /docker-entrypoint-initdb.d")
    init = (root / "database/init/01-roles-and-schemas.sh").read_text()
    for role in re.findall(r"\w+:(\w+_service)", init):
        if f"{role.upper()}_DB_PASSWORD" not in postgres.get("environment", {}):
            problems.append(f"postgres: {role.upper()}_DB_PASSWORD (read by the init script) is not set")
    problems += _gateway_problems(services.get("gateway", {}), root)
    return problems


def _gateway_problems(gateway: dict[str, Any], root: Path) -> list[str]:
    problems = []
    mounts = [str(m) for m in gateway.get("volumes", [])]
    if not any(m.startswith("./gateway/nginx.conf.template:/etc/nginx/templates/") for m in mounts):
        problems.append("gateway: gateway/nginx.conf.template is not mounted into /etc/nginx/templates")
    template = (root / "gateway/nginx.conf.template").read_text()
    for var in sorted(set(re.findall(r"\$\{([A-Z_]+)\}", template)) - set(gateway.get("environment", {}))):
        problems.append(f"gateway: the template's ${{{var}}} is not set")
    return problems


def test_compose_agrees_with_the_code(compose: dict[str, Any], check: Any) -> None:
    assert check(compose) == []


def test_env_example_lists_every_variable_compose_reads(repo_root: Path) -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", (repo_root / "docker-compose.yml").read_text()))
    example = (repo_root / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", example, flags=re.MULTILINE))
    assert used - listed == set(), "set in docker-compose.yml but not documented in .env.example"
    assert listed - used == set(), "in .env.example but docker-compose.yml never reads it"


def _break(compose: dict[str, Any], how: str) -> dict[str, Any]:
    broken = copy.deepcopy(compose)
    services = broken["services"]
    if how == "unknown env var":
        services["booking-service"]["environment"]["BOOKING_HOLD_MINUTES"] = "5"
    elif how == "wrong port":
        services["payment-service"]["ports"] = ["8014:8014"]
    elif how == "no healthcheck":
        del services["movie-service"]["healthcheck"]
    elif how == "missing build file":
        services["auth-service"]["build"]["dockerfile"] = "services/auth/Dockerfile"
    elif how == "wrong build arg":
        build = services["movie-service"]["build"]
        services["movie-service"]["build"] = {**build, "args": {"SERVICE": "film"}}
    elif how == "migration not awaited":
        services["notification-service"]["depends_on"].pop("notification-migrate")
    return broken


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("unknown env var", "booking-service: BOOKING_HOLD_MINUTES is not a field of its settings class"),
        ("wrong port", "payment-service: port is not 8004"),
        ("no healthcheck", "movie-service: no healthcheck"),
        ("missing build file", "auth-service: build context/Dockerfile does not exist"),
        ("wrong build arg", "movie-service: build args {'SERVICE': 'film'} are not"),
        ("wrong build arg", "movie-migrate: not built as movie-service is"),
        ("migration not awaited", "notification-service: does not wait for notification-migrate"),
    ],
)
def test_a_broken_compose_file_is_caught(
    compose: dict[str, Any], check: Any, how: str, expected: str
) -> None:
    problems = check(_break(compose, how))
    assert any(p.startswith(expected) for p in problems), problems


def test_windows_script_drives_compose_and_lists_published_urls(
    compose: dict[str, Any], repo_root: Path
) -> None:
    script = (repo_root / "scripts/run_local.ps1").read_text()
    assert re.search(r'ValidateSet\("up", "down", "status", "logs"\)', script)
    assert "docker compose -f $ComposeFile" in script
    published = {p.split(":")[0] for entry in compose["services"].values() for p in _ports(entry)}
    for port in re.findall(r'"http://localhost(?::(\d+))?', script):
        assert (port or "80") in published, (
            f"run_local.ps1 shows :{port or 80}, which compose does not publish"
        )
