"""Notification's CPU per tickets mail: notification-service in this process, N mails through it.

    .venv/bin/python scripts/benchmark/notification_cpu.py --database mb_x --mails 500
    .venv/bin/python scripts/benchmark/notification_cpu.py --database mb_x --profile var/prof.txt

Starts notification-service's app in this process (its lifespan: engine, RabbitMQ consumer,
SMTP sender; uvloop, as ``servicekit.serve`` runs it) against the machine's PostgreSQL and
RabbitMQ, with a private exchange and queues, and ``scripts/mailcatcher.py`` as a subprocess
on a free 127.0.0.1 port. A child process publishes ``--warmup`` and then ``--mails``
``booking.confirmed`` events, each for another user, with two tickets (``--without-tickets``: as
booking sent it before tickets, without them and the theater's address; ``--with-payment``: each
preceded by its purchase's ``payment.completed``, which notification consumes to mail nothing);
the script waits (bounded by ``--timeout``) until each batch's mails are in the catcher's index
and prints this process's CPU time (user + system) per mail and wall time per mail for the
measured batch only: start-up, warm-up and the publisher's own CPU are excluded.
``--profile FILE`` samples this process with py-spy (``--nonblocking``) over the measured batch,
writes the collapsed stacks to FILE and prints where the samples fall.

The database must hold notification's schema (``scripts/db_setup.sh <db>``). Exit 1 when a
mail is missing or a recipient got two.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import DEVNULL, Process
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from servicekit.events import new_event
from servicekit.testing import round_trips
from servicekit.testing.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = os.environ.get("TEST_DB_PASSWORD", "dev-only-db-password")
# Where samples fall: the first marker found in a stack (innermost frame first) names its bucket.
PROFILE_BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("jinja2 render", ("jinja2/", "rendering.py")),
    ("QR codes (zxing-cpp)", ("zxingcpp", "attachments.py")),
    ("calendar file (icalendar)", ("icalendar/",)),
    ("email.message build + flatten", ("email/", "build_email")),
    ("SMTP client (aiosmtplib)", ("aiosmtplib/",)),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("asyncpg", ("asyncpg/",)),
    ("RabbitMQ client (aio_pika/aiormq/pamqp)", ("aio_pika/", "aiormq/", "pamqp/")),
    ("pydantic", ("pydantic",)),
    ("logging", ("logging/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("event loop, sockets", ("uvloop", "asyncio/", "selectors", "socket")),
]


@dataclass
class Catcher:
    """The mail catcher subprocess and the index it appends one line per mail to."""

    process: Process
    index: Path
    offset: int = 0
    lines: int = 0

    def count(self) -> int:
        """Mails indexed so far (reads only what was appended since the last call)."""
        if not self.index.exists():
            return 0
        with self.index.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        self.lines += complete.count(b"\n")
        return self.lines

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def purchase_events(index: int, with_payment: bool, with_tickets: bool) -> list[dict[str, Any]]:
    """The ``booking.confirmed`` of a purchase by a user of its own, as booking publishes it;
    with ``with_payment`` preceded by the purchase's ``payment.completed`` (which mails nothing)."""
    starts_at = (datetime.now(UTC) + timedelta(days=2)).replace(hour=19, minute=30, second=0, microsecond=0)
    user = {"user_id": str(uuid.uuid4()), "user_email": f"bench{index}-{uuid.uuid4().hex[:8]}@example.com"}
    booking = {**user, "booking_id": str(uuid.uuid4()), "payment_id": str(uuid.uuid4())}
    confirmed = {
        **booking,
        "showtime_id": str(uuid.uuid4()),
        "seats": ["C4", "C5"],
        "movie_title": "Dune: Part Two",
        "theater_name": "Riverside Cinema",
        "auditorium_name": "Hall 3",
        "starts_at": starts_at.isoformat(),
        "total_amount": 2500,
        "currency": "USD",
        "time_zone": "Asia/Ho_Chi_Minh",
    }
    if with_tickets:
        confirmed["theater_address"] = "12 Riverside Walk, Hanoi"
        confirmed["tickets"] = [{"code": secrets.token_urlsafe(32), "seat": seat} for seat in ("C4", "C5")]
    paid = {
        **booking,
        "amount": 2500,
        "currency": "USD",
        "payment_method": "credit_card",
        "card_last4": "4242",
    }
    events = [("payment.completed", paid)] if with_payment else []
    return [envelope(event_type, data) for event_type, data in [*events, ("booking.confirmed", confirmed)]]


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return new_event(event_type, "benchmark", data).model_dump(mode="json")


async def publish(args: argparse.Namespace, count: int, first: int) -> None:
    """The child process: ``count`` purchases' events, persistent, confirmed by the broker."""
    import aio_pika

    connection = await aio_pika.connect(args.rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(args.exchange)
        for i in range(first, first + count):
            for event in purchase_events(i, args.with_payment, not args.without_tickets):
                body = json.dumps(event).encode()
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await exchange.publish(message, routing_key=event["event_type"])


async def start_publisher(args: argparse.Namespace, exchange: str, count: int, first: int) -> Process:
    command = ["--publish-only", str(count), "--first", str(first)]
    command += ["--rabbitmq-url", args.rabbitmq_url, "--exchange", exchange]
    command += ["--with-payment"] if args.with_payment else []
    command += ["--without-tickets"] if args.without_tickets else []
    return await asyncio.create_subprocess_exec(sys.executable, __file__, *command)


@asynccontextmanager
async def mail_catcher(folder: Path) -> AsyncIterator[tuple[Catcher, int]]:
    port = free_port()
    command = [str(ROOT / "scripts" / "mailcatcher.py"), "--host", "127.0.0.1", "--port", str(port)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        "--dir",
        str(folder),
        stdout=DEVNULL,
        stderr=DEVNULL,  # it logs every mail
    )
    try:
        await until(lambda: port_open(port), 10, "the mail catcher listening")
        yield Catcher(process, folder / "index.jsonl"), port
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def until(probe: Callable[[], Any], within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
    return value


async def consumer_attached(url: str, queue_name: str) -> bool:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(queue_name, passive=True)
        except aio_pika.exceptions.ChannelClosed:
            return False
        return bool(queue.declaration_result.consumer_count)


async def send_batch(args: argparse.Namespace, catcher: Catcher, exchange: str, count: int) -> float:
    """Publish ``count`` events from a child process; return once their mails are all caught."""
    started, target = time.monotonic(), catcher.count() + count
    publisher = await start_publisher(args, exchange, count, catcher.lines)
    await until(lambda: catcher.count() >= target, args.timeout, f"{target} mails in the catcher")
    elapsed = time.monotonic() - started
    if await asyncio.wait_for(publisher.wait(), 30) != 0:
        raise SystemExit("the publisher failed")
    return elapsed


async def start_profiler(output: Path) -> Process:
    py_spy = Path(sys.executable).with_name("py-spy")
    command = ["record", "--pid", str(os.getpid()), "--format", "raw", "--nonblocking", "--rate", "250"]
    return await asyncio.create_subprocess_exec(py_spy, *command, "-o", str(output), stderr=DEVNULL)


def summarise_profile(path: Path) -> None:
    """Share of samples per bucket (innermost matching frame), and the top functions."""
    buckets: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames, count = stack.split(";"), int(count_text)
        total += count
        own[frames[-1]] += count
        buckets[bucket_of(frames)] += count
    say(f"\nprofile: {total} samples ({path})")
    for name, count in buckets.most_common():
        say(f"  {100 * count / total:5.1f}%  {name}")
    say("  top frames (own time):")
    for frame, count in own.most_common(12):
        say(f"  {100 * count / total:5.1f}%  {frame[:150]}")


def bucket_of(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, markers in PROFILE_BUCKETS:
            if any(marker in frame for marker in markers):
                return name
    return "other (notification, servicekit, stdlib)"


async def run(args: argparse.Namespace) -> int:
    from notification_service.config import NotificationSettings
    from notification_service.main import create_app

    run_id = uuid.uuid4().hex[:8]
    exchange = f"bench.{run_id}.booking_events"
    with tempfile.TemporaryDirectory(prefix="notification-bench-") as folder:
        async with mail_catcher(Path(folder)) as (catcher, smtp_port):
            settings = NotificationSettings(
                database_url=f"postgresql+asyncpg://notification_service:{PASSWORD}@127.0.0.1:5432/{args.database}",
                rabbitmq_url=args.rabbitmq_url,
                events_exchange=exchange,
                queue_prefix=f"bench.{run_id}.",
                queue_expires_ms=600_000,
                smtp_port=smtp_port,
                **dict(item.split("=", 1) for item in args.setting),
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                queue = f"bench.{run_id}.notification-service.events"
                deadline = time.monotonic() + 15
                while not await consumer_attached(args.rabbitmq_url, queue):
                    if time.monotonic() > deadline:
                        raise SystemExit("the consumer did not attach")
                    await asyncio.sleep(0.1)
                if args.warmup:
                    await send_batch(args, catcher, exchange, args.warmup)
                profiler = await start_profiler(Path(args.profile)) if args.profile else None
                cpu0, catcher_cpu0 = time.process_time(), catcher.cpu_seconds()
                with round_trips(everywhere=True) as trips:
                    wall = await send_batch(args, catcher, exchange, args.mails)
                cpu, catcher_cpu = time.process_time() - cpu0, catcher.cpu_seconds() - catcher_cpu0
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    await asyncio.wait_for(profiler.wait(), 30)
            return report(args, Path(folder) / "index.jsonl", cpu, wall, catcher_cpu, trips[0])


def report(
    args: argparse.Namespace, index: Path, cpu: float, wall: float, catcher_cpu: float, trips: int
) -> int:
    entries = [json.loads(line) for line in index.read_text().splitlines()]
    per_recipient = Counter(rcpt for entry in entries for rcpt in entry["rcpt_to"])
    duplicates = sum(1 for seen in per_recipient.values() if seen > 1)
    expected = args.mails + args.warmup
    say(f"mails: {len(entries)} caught of {expected} published, {duplicates} recipients mailed twice")
    say(f"notification CPU per mail: {1000 * cpu / args.mails:.2f} ms ({cpu:.2f} s for {args.mails})")
    say(f"wall time per mail:        {1000 * wall / args.mails:.2f} ms ({args.mails / wall:.0f} mails/s)")
    say(f"mail catcher CPU per mail: {1000 * catcher_cpu / args.mails:.2f} ms")
    say(f"PostgreSQL round trips per mail: {trips / args.mails:.2f} (servicekit.testing.round_trips)")
    if args.profile:
        summarise_profile(Path(args.profile))
    return 0 if len(entries) == expected and duplicates == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=os.environ.get("TEST_DATABASE_NAME", "moviebooking_test"))
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--mails", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--with-payment",
        action="store_true",
        help="precede each booking.confirmed by its purchase's payment.completed (CPU per purchase)",
    )
    parser.add_argument(
        "--without-tickets",
        action="store_true",
        help="booking.confirmed as before tickets: no tickets, no theater address (no QR codes)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a batch")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the measured batch here")
    parser.add_argument(
        "--setting", action="append", default=[], help="a NotificationSettings field, e.g. smtp_pool_size=1"
    )
    parser.add_argument("--publish-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--exchange", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish_only is not None:
        asyncio.run(publish(args, args.publish_only, args.first))
        return 0
    import uvloop

    return uvloop.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
