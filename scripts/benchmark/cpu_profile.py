"""Where a service's CPU goes, by CPU clock: a service run under yappi, and the profile by library.

py-spy samples a process whenever it is runnable, so on a machine with more runnable
processes than cores a sample often lands where the process was preempted (a send() that
woke PostgreSQL) rather than where it spent CPU. yappi's CPU clock counts only the thread's
own CPU time, per function (deterministic: every call is timed, which inflates code made of
many small calls, such as SQLAlchemy's, by more than code made of few; compare shares
between runs of the same kind, not with py-spy's).

    # run a service of a running instance under the profiler instead (same environment):
    kill "$(cat <run dir>/pids/payment.pid)"
    env $(tr '\\0' ' ' </proc/<old pid>/environ) YAPPI_OUT=/tmp/payment.yappi \\
        .venv/bin/python scripts/benchmark/cpu_profile.py serve payment_service &
    kill -USR1 <pid>   # start counting (under load) ... kill -USR2 <pid>   # stop, write the profile
    .venv/bin/python scripts/benchmark/cpu_profile.py summary /tmp/payment.yappi [--top 15]

yappi is not a project dependency: `.tools/bin/uv pip install --python .venv/bin/python yappi`.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import signal
import sys
from collections import Counter
from typing import Any

LIBRARY = re.compile(r"site-packages/([^/]+)/")
OWN = re.compile(r"services/([^/]+)/")


def serve(module: str) -> None:
    """Run ``python -m servicekit.serve <module>`` with yappi's CPU clock armed by signals."""
    import yappi  # noqa: PLC0415  (not a project dependency)

    out = os.environ["YAPPI_OUT"]
    yappi.set_clock_type("cpu")

    def start(*_: Any) -> None:
        yappi.clear_stats()
        yappi.start(builtins=True)

    def stop(*_: Any) -> None:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["servicekit.serve", module]
    runpy.run_module("servicekit.serve", run_name="__main__")


def layer(path: str) -> str:
    """The library (site-packages), the service's own package, the builtins or the stdlib module."""
    if found := LIBRARY.search(path):
        return found.group(1)
    if found := OWN.search(path):
        return f"own: {found.group(1)}"
    if path.startswith("~") or path in ("", "builtins"):
        return "builtins (C functions: isinstance, getattr, dict ...)"
    return f"stdlib: {path.rsplit('/', 1)[-1]}"


def summary(path: str, top: int) -> None:
    import pstats  # noqa: PLC0415

    stats = pstats.Stats(path)
    by_layer: Counter[str] = Counter()
    for (file, _, _), (_, _, own_seconds, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_layer[layer(file)] += own_seconds
    total = sum(by_layer.values())
    sys.stdout.write(f"{path}: {total:.2f} CPU s (own time of every function)\n")
    for name, seconds in by_layer.most_common(top):
        sys.stdout.write(f"  {100 * seconds / total:5.1f}%  {name}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve").add_argument("module")
    summarise = commands.add_parser("summary")
    summarise.add_argument("profile")
    summarise.add_argument("--top", type=int, default=15)
    arguments = parser.parse_args()
    if arguments.command == "serve":
        serve(arguments.module)
    else:
        summary(arguments.profile, arguments.top)


if __name__ == "__main__":
    main()
