"""Run the chaos scenarios (scripts/chaos.sh is the entry point: it prepares the venv and nginx,
the run folder, and kills what a killed run left behind).

    PYTHONPATH=scripts:scripts/benchmark .venv/bin/python -m chaos --dir DIR [--only 4 5] [--port-base 26000]

Prints what it starts, one line per scenario, the timings, and last one JSON line:
{"scenarios", "passed", "lost_confirmed_bookings", "double_sold_seats", "double_charges",
"lost_mails", "max_unavailable_s"}. Exit 1 when a scenario failed or anything was lost or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import fixtures
import httpx

from auth_service.config import DEV_ADMIN_PASSWORD
from chaos.ledger import Verdict, run_failed, summary_line
from chaos.procs import Processes, listening_ports
from chaos.scenarios import RUN_ORDER, SCENARIOS, Run, run_scenario
from chaos.system import System
from chaos.topology import Ports, Topology

USERS = 20
SEATS_PER_SHOWTIME = 1000
T = TypeVar("T")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="the run's folder (made by chaos.sh)")
    parser.add_argument("--port-base", type=int, default=26000, help="every port is this + a fixed offset")
    parser.add_argument("--only", type=int, nargs="+", choices=sorted(SCENARIOS), help="scenario numbers")
    return parser.parse_args()


def say(text: str = "") -> None:
    print(text, flush=True)  # noqa: T201  (the script's output)


async def timed(what: str, step: Awaitable[T]) -> T:
    began = time.monotonic()
    result = await step
    say(f"  {what}: {time.monotonic() - began:.1f} s")
    return result


async def prepare(system: System, numbers: list[int]) -> tuple[list[str], dict[int, tuple[str, list[str]]]]:
    """Users (registered through the gateway) and one 1,000-seat showtime per scenario."""
    wanted = {f"scenario-{number}": SEATS_PER_SHOWTIME for number in numbers}
    async with httpx.AsyncClient(base_url=system.base_url, timeout=60) as api:
        headers = await fixtures.admin_headers(api, DEV_ADMIN_PASSWORD)
        made = await fixtures.create_programme(api, headers, f"chaos-{uuid.uuid4().hex[:8]}", wanted)
        showtimes = {
            n: (made[f"scenario-{n}"], await fixtures.seat_ids(api, made[f"scenario-{n}"])) for n in numbers
        }
        accounts = [{"username": f"chaos{uuid.uuid4().hex[:12]}"} for _ in range(USERS)]
        tokens = await fixtures.users(api, accounts)
    return tokens, showtimes


def report(verdict: Verdict, detail: str, seconds: float) -> None:
    recovered = "never" if verdict.recovered_s is None else f"{verdict.recovered_s:.1f} s"
    say(
        f"[{verdict.number}] {verdict.name}: {'PASSED' if verdict.passed else 'FAILED'} in {seconds:.0f} s\n"
        f"    {detail}\n"
        f"    purchases {verdict.purchases}, succeeded {verdict.succeeded}; longest refusal "
        f"{verdict.unavailable_s:.1f} s, all purchases succeed again {recovered} after the fault\n"
        f"    lost confirmed {verdict.lost_confirmed_bookings}, lost mails {verdict.lost_mails}, "
        f"duplicate mails {verdict.duplicate_mails}, double-sold seats {verdict.double_sold_seats}, "
        f"double charges {verdict.double_charges}"
    )


async def scenarios(numbers: list[int], run: Run) -> list[Verdict]:
    verdicts = []
    for number in numbers:
        began = time.monotonic()
        verdict, detail = await run_scenario(SCENARIOS[number], run)
        report(verdict, detail, time.monotonic() - began)
        if not verdict.passed:  # the broker's view, for the post-mortem
            say(await asyncio.to_thread(run.topology.rabbit.queue_states))
        verdicts.append(verdict)
    return verdicts


async def chaos(args: argparse.Namespace) -> list[Verdict]:
    numbers = [number for number in RUN_ORDER if not args.only or number in args.only]
    procs, ports = Processes(args.dir), Ports(args.port_base)
    topology = Topology(args.dir, procs, ports)
    system = System(args.dir, topology, ports)
    signal_task_cancel()
    verdicts: list[Verdict] = []
    try:
        say(f"chaos: private topology in {args.dir}, ports {ports.base}-{ports.base + 999}")
        await timed(
            "PostgreSQL primary + sync standby, Redis + replica + 3 sentinels, RabbitMQ x3", topology.start()
        )
        await timed("services (booking x2, payment x2), mail catcher, gateway", system.start())
        tokens, showtimes = await timed(
            f"{USERS} users and {len(numbers)} showtimes", prepare(system, numbers)
        )
        verdicts = await scenarios(numbers, Run(topology, system, procs, tokens, showtimes))
    except Exception:  # the run stops here; the teardown and the JSON line still come
        say(f"!! chaos run stopped:\n{traceback.format_exc()}")
    finally:
        await timed("teardown", teardown(system, topology, procs))
    return verdicts


def signal_task_cancel() -> None:
    """SIGTERM cancels the run like Ctrl-C does: the teardown in ``chaos`` still runs."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def teardown(system: System, topology: Topology, procs: Processes) -> None:
    for step in (system.down(), topology.stop(), procs.stop_all()):
        try:
            await step
        except Exception:  # one failed step must not keep the others from running
            say(f"!! teardown step failed:\n{traceback.format_exc()}")


def main() -> int:
    args = parse_args()
    planned = len([n for n in RUN_ORDER if not args.only or n in args.only])
    try:
        verdicts = asyncio.run(chaos(args))
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("!! interrupted (torn down)")
        verdicts = []
    left = listening_ports(args.port_base, args.port_base + 999)
    if left:
        say(f"!! still listening after the teardown: {left}")
    line = summary_line(planned, verdicts)
    say(line)
    return 1 if run_failed(json.loads(line)) or left else 0


if __name__ == "__main__":
    sys.exit(main())
