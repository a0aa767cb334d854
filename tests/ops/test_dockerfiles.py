"""The one service Dockerfile agrees with the code for every service it builds: sources exist,
start command, port, health; and the native runner starts the very command the image runs."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
from itertools import dropwhile
from pathlib import Path
from typing import Any

import pytest

SERVICES = ["auth-service", "movie-service", "booking-service", "payment-service", "notification-service"]
RUNTIME_BASE = "python:3.11-slim"
DOCKERFILE = "services/Dockerfile"  # every service's image (ContractService.dockerfile)
# Docker replaces $VAR / ${VAR} in these instructions itself; in RUN the shell does, with the
# same values (the stage's ARGs and ENVs). CMD's shell form is expanded by the shell at run
# time, when only ENV is left: build arguments are gone.
SUBSTITUTED = {"ADD", "COPY", "ENV", "EXPOSE", "RUN", "USER", "WORKDIR"}
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def expand(text: str, variables: dict[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced by their values (an unset one by nothing, as Docker does)."""
    return VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), text)


def resolve(instructions: list[tuple[str, str]], args: dict[str, str]) -> list[tuple[str, str]]:
    """The instructions as they take effect with these build arguments (ARG and ENV scoped per stage)."""
    resolved = []
    declared: dict[str, str] = {}
    env: dict[str, str] = {}
    for keyword, text in instructions:
        if keyword == "FROM":
            declared, env = {}, {}
        elif keyword == "ARG":
            name, _, default = text.partition("=")
            declared[name] = args.get(name, default)
        if keyword in SUBSTITUTED:
            text = expand(text, {**declared, **env})
        elif keyword == "CMD" and not text.startswith("["):
            text = expand(text, env)
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in text.split())
        resolved.append((keyword, text))
    return resolved


def command_of(cmd: str) -> list[str] | None:
    """The program and arguments a CMD starts; None for a shell form that does not ``exec``
    (the shell would stay PID 1 and the service would never see SIGTERM)."""
    if cmd.startswith("["):
        words: list[str] = json.loads(cmd)
        return words
    words = shlex.split(cmd)
    return words[1:] if words[:1] == ["exec"] else None


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :] if starts else []


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last match wins)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    anywhere = ["/".join(parts[i : j + 1]) for i in range(len(parts)) for j in range(i, len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        deep = pattern.startswith("**/")
        pool = anywhere if deep else prefixes
        if any(fnmatch.fnmatchcase(p, pattern.removeprefix("**/")) for p in pool):
            result = not negate
    return result


def copy_sources(args: str) -> list[str]:
    words = json.loads(args) if args.startswith("[") else args.split()
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def dockerfile_problems(text: str, service: Any, root: Path) -> list[str]:
    """Everything in the Dockerfile, built for one service, that disagrees with the repository
    or the contract."""
    instructions = resolve(parse_dockerfile(text), service.build_args)
    problems: list[str] = []
    problems += _build_problems(instructions, service, root)
    problems += _runtime_problems(final_stage(instructions), service)
    return problems


def _build_problems(instructions: list[tuple[str, str]], service: Any, root: Path) -> list[str]:
    problems = []
    if sum(keyword == "FROM" for keyword, _ in instructions) < 2:
        problems.append("not a multi-stage build")
    patterns = [p.strip() for p in (root / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    copied = set()
    for keyword, args in instructions:
        if keyword in ("COPY", "ADD") and "--from=" not in args:
            for source in copy_sources(args):
                copied.add(source.rstrip("/"))
                if not (root / source).exists():
                    problems.append(f"COPY source {source} does not exist")
                elif ignored(source.rstrip("/"), patterns):
                    problems.append(f"COPY source {source} is excluded by .dockerignore")
    for member in sorted(root.glob("services/*/pyproject.toml")):
        if str(member.relative_to(root)) not in copied:
            problems.append(f"workspace member {member.relative_to(root)} is not copied (uv needs it)")
    syncs = [args for keyword, args in instructions if keyword == "RUN" and "uv sync" in args]
    if not any(f"--package {service.name}" in s and "--frozen" in s and "--no-dev" in s for s in syncs):
        problems.append(f"no `uv sync --frozen --no-dev --package {service.name}`")
    return problems


def _runtime_problems(stage: list[tuple[str, str]], service: Any) -> list[str]:
    problems = []
    values: dict[str, list[str]] = {}
    for keyword, args in stage:
        values.setdefault(keyword, []).append(args)
    if not values.get("FROM") or values["FROM"][0].split()[0] != RUNTIME_BASE:
        problems.append(f"runtime stage is not {RUNTIME_BASE}")
    user = values.get("USER", ["root"])[-1].split(":")[0]
    if user in ("root", "0"):
        problems.append("runtime runs as root")
    if not any("/health/live" in h for h in values.get("HEALTHCHECK", [])):
        problems.append("no HEALTHCHECK on /health/live")
    if str(service.port) not in " ".join(values.get("EXPOSE", [])).split():
        problems.append(f"does not EXPOSE {service.port}")
    if not any(f"PORT={service.port}" in env.split() for env in values.get("ENV", [])):
        problems.append(f"ENV PORT is not {service.port}")
    cmd = command_of(values["CMD"][-1]) if values.get("CMD") else None
    if values.get("CMD") and cmd is None:
        problems.append("CMD in shell form without exec: python would not be PID 1")
    elif cmd != service.start_command:
        problems.append(f"CMD {cmd} is not the contract's start command {service.start_command}")
    return problems


def _service(contract_services: list[Any], name: str) -> Any:
    return next(s for s in contract_services if s.name == name)


@pytest.mark.parametrize("name", SERVICES)
def test_dockerfile_agrees_with_code_and_contract(
    name: str, contract_services: list[Any], repo_root: Path
) -> None:
    text = (repo_root / DOCKERFILE).read_text()
    assert dockerfile_problems(text, _service(contract_services, name), repo_root) == []


def test_one_dockerfile_for_every_service(repo_root: Path) -> None:
    assert sorted(p.relative_to(repo_root).as_posix() for p in repo_root.glob("services/**/Dockerfile")) == [
        DOCKERFILE
    ]


BREAKS = {
    "CMD": ("servicekit.serve", "servicekit.server", "is not the contract's start command"),
    "CMD reads a build argument": (
        '"$SERVICE_PACKAGE"',
        '"${SERVICE}_service"',
        "CMD ['python', '-m', 'servicekit.serve', '_service']",
    ),
    "CMD without exec": ("CMD exec python", "CMD python", "without exec"),
    "USER": ("USER 10001:10001", "USER root", "runtime runs as root"),
    "COPY": (
        "services/${SERVICE}-service/${SERVICE}_service ",
        "services/${SERVICE}-service/${SERVICE}s ",
        "COPY source services/booking-service/bookings does not exist",
    ),
    "HEALTHCHECK": ("/health/live", "/healthz", "no HEALTHCHECK"),
    "EXPOSE": ("EXPOSE ${PORT}", "EXPOSE 8080", "does not EXPOSE 8003"),
    "ENV PORT": ("PORT=${PORT}", "PORT=8080", "ENV PORT is not 8003"),
}


@pytest.mark.parametrize("broken", sorted(BREAKS))
def test_a_broken_dockerfile_is_caught(broken: str, contract_services: list[Any], repo_root: Path) -> None:
    text = (repo_root / DOCKERFILE).read_text()
    old, new, expected = BREAKS[broken]
    assert old in text
    problems = dockerfile_problems(
        text.replace(old, new), _service(contract_services, "booking-service"), repo_root
    )
    assert any(expected in p for p in problems), problems


def test_dockerignore_keeps_tests_and_virtualenv_out(repo_root: Path) -> None:
    patterns = [p for p in (repo_root / ".dockerignore").read_text().splitlines() if p and p[0] != "#"]
    assert ignored(".venv", patterns)
    assert ignored("services/auth-service/tests", patterns)
    assert ignored("services/servicekit/servicekit/__pycache__", patterns)
    assert not ignored("services/auth-service/auth_service", patterns)
    assert not ignored("uv.lock", patterns)


def runner_command(root: Path, part: str) -> list[str]:
    """What ``scripts/run_local.sh`` runs to start ``part`` (its environment assignments left
    out): the script's own functions, with ``start_process`` printing instead of starting."""
    script = (root / "scripts/run_local.sh").read_text()
    own_root = 'ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"'
    assert own_root in script and '\ncase "${1:-}" in' in script, "run_local.sh changed shape"
    functions = script.replace(own_root, f"ROOT={shlex.quote(str(root))}")
    functions = functions[: functions.rindex('\ncase "${1:-}" in')]
    probe = functions + '\nstart_process() { shift 2; printf "%s\\n" "$@"; }\nstart_part "$1"\n'
    words = subprocess.run(
        ["bash", "-c", probe, "run_local.sh", part], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    assert words[0] == "env", words
    return list(dropwhile(lambda word: "=" in word, words[1:]))


@pytest.mark.parametrize("part", ["auth", "movie", "booking", "booking-2", "payment", "notification"])
def test_native_runner_starts_the_command_the_image_runs(
    part: str, contract_services: list[Any], repo_root: Path
) -> None:
    service = _service(contract_services, part.split("-")[0] + "-service")
    instructions = resolve(parse_dockerfile((repo_root / DOCKERFILE).read_text()), service.build_args)
    image = command_of([args for keyword, args in instructions if keyword == "CMD"][-1])
    program, *arguments = runner_command(repo_root, part)
    assert Path(program).name.startswith("python")
    assert ["python", *arguments] == image == service.start_command
