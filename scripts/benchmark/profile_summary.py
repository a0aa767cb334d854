"""Summarise a py-spy profile (``py-spy record --format raw``): where a service's CPU goes.

    .venv/bin/py-spy record --pid <pid> --duration 15 --nonblocking --format raw -o payment.raw.txt
    .venv/bin/python scripts/benchmark/profile_summary.py payment.raw.txt [--top 25]

Prints three views of the samples (each line of the raw file is a stack, root first, and
its sample count):
- **layer**: the library the innermost frame belongs to (SQLAlchemy's ORM, its Core, the
  asyncpg driver, httpx, pydantic, FastAPI/Starlette, aio-pika, logging, the event loop ...);
- **the service's own functions**, inclusive (their callees counted): the share of samples
  with the function anywhere on the stack, for the packages ``*_service`` and ``servicekit``;
- **self**: the innermost frames, by function.
py-spy samples threads that are runnable, so on a busy machine a share is of the time the
process wanted the CPU, not only of the time it had it: read the shares, not the counts.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from report import say

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
# (layer, pattern on the frame's file), the first match wins; checked innermost frame first
LAYERS = (
    ("asyncpg (driver, protocol)", r"^asyncpg/"),
    ("SQLAlchemy ORM", r"^sqlalchemy/orm/"),
    ("SQLAlchemy Core (compile, execute, pool, results)", r"^(sqlalchemy/|<sqlalchemy)"),
    (
        "httpx / httpcore (service-to-service HTTP)",
        r"^(httpx|httpcore|h11|anyio|sniffio|pybreaker|urllib|http)/",
    ),
    ("pydantic", r"^pydantic"),
    ("FastAPI / Starlette (routing, dependencies, responses)", r"^(fastapi|starlette)/"),
    ("uvicorn / httptools (HTTP server)", r"^uvicorn/"),
    ("aio-pika / aiormq / pamqp (RabbitMQ)", r"^(aio_pika|aiormq|pamqp)/"),
    ("redis-py", r"^redis/"),
    ("logging", r"^(logging/|servicekit/logs?)"),
    ("json / orjson", r"^json/"),
    ("prometheus_client", r"^prometheus_client/"),
    ("jinja2 / email / SMTP", r"^(jinja2|email|aiosmtplib|smtplib|markupsafe)/"),
    ("jose / cryptography / hmac", r"^(jose|cryptography|hmac|hashlib)"),
    ("asyncio / event loop", r"^(asyncio|uvloop|<frozen|selectors)"),
    ("opentelemetry", r"^(opentelemetry|trace)/"),
    ("other standard library (uuid, typing, enum, weakref, ...)", r"^\w+\.py$"),
)
OWN = re.compile(r"^(\w+_service|servicekit)/")
DATABASE = re.compile(r"^(sqlalchemy/|<sqlalchemy|asyncpg/)")
ROOT = re.compile(r"^(<frozen runpy>|threading\.py)")  # a thread's full stack starts here


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """[(frames root first as (function, file), samples)]."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for text in stack.split(";"):
            match = FRAME.match(text)
            frames.append((match["function"], match["file"]) if match else (text, ""))
        stacks.append((frames, int(count)))
    return stacks


def layer_of(frames: list[tuple[str, str]]) -> str:
    """The layer of the innermost frame that belongs to a known library, else the innermost own one."""
    for _function, file in reversed(frames):
        for name, pattern in LAYERS:
            if re.search(pattern, file):
                return name
        if OWN.search(file):
            return f"own code: {file.split('/')[0]}"
    return "other"


def summarise(path: Path, top: int) -> None:
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    own_self: Counter[str] = Counter()
    for frames, count in stacks:
        layers[layer_of(frames)] += count
        for function, file in {(f, fl) for f, fl in frames if OWN.search(fl)}:
            inclusive[f"{function} ({file})"] += count
        function, file = frames[-1]
        own_self[f"{function} ({file})"] += count
    say(f"{path}: {total} samples")
    database = sum(count for frames, count in stacks if any(DATABASE.search(file) for _, file in frames))
    detached = sum(count for frames, count in stacks if frames[0][1] and not ROOT.search(frames[0][1]))
    say(f"  database access (a SQLAlchemy or asyncpg frame on the stack): {100 * database / total:.1f}%")
    say(
        f"  inside SQLAlchemy greenlets, caller not visible: {100 * detached / total:.1f}%"
        " (in the layer view, not in the own functions)"
    )
    _show("By layer (innermost library frame)", layers, total, len(layers))
    _show("The service's own functions, inclusive", inclusive, total, top)
    _show("Self (innermost frame)", own_self, total, top)


def _show(title: str, counts: Counter[str], total: int, top: int) -> None:
    say(f"\n{title}:")
    for name, count in counts.most_common(top):
        say(f"  {100 * count / total:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    arguments = parser.parse_args()
    for path in arguments.raw:
        summarise(path, arguments.top)


if __name__ == "__main__":
    main()
