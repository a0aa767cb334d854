"""A tiny local mail catcher for the no-Docker runner: every mail it receives becomes a file.

    python scripts/mailcatcher.py --port 1025 --dir var/mail

Each message is written as ``<dir>/<UTC timestamp>-<id>.eml`` (open it with any mail
client) and one JSON line is appended to ``<dir>/index.jsonl``
(``{file, received_at, mail_from, rcpt_to, subject}``). Nothing is relayed.
Environment: ``MAILCATCHER_HOST``, ``MAILCATCHER_PORT``, ``MAILCATCHER_DIR``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger("mailcatcher")


class FolderHandler:
    """aiosmtpd handler: stores each message as an .eml file plus a line in index.jsonl."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        received = datetime.now(UTC)
        name = f"{received.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}.eml"
        entry = {
            "file": name,
            "received_at": received.isoformat(),
            "mail_from": envelope.mail_from,
            "rcpt_to": list(envelope.rcpt_tos),
            "subject": str(message_from_bytes(content, policy=policy.default).get("Subject", "")),
        }
        await asyncio.to_thread(self._store, name, content, entry)
        logger.info("mail to %s: %s (%s)", ", ".join(envelope.rcpt_tos), entry["subject"], name)
        return "250 Message accepted for delivery"

    def _store(self, name: str, content: bytes, entry: dict[str, Any]) -> None:
        (self.folder / name).write_bytes(content)
        with (self.folder / "index.jsonl").open("a", encoding="utf-8") as index:
            index.write(json.dumps(entry) + "\n")


async def serve(host: str, port: int, folder: Path) -> None:
    """Accept SMTP on ``host:port`` until SIGINT/SIGTERM (``folder`` exists already)."""
    loop = asyncio.get_running_loop()
    handler = FolderHandler(folder)
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="mailcatcher.local", loop=loop), host=host, port=port
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logger.info("mail catcher on %s:%d writing to %s", host, port, folder)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("MAILCATCHER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MAILCATCHER_PORT", "1025")))
    parser.add_argument("--dir", default=os.environ.get("MAILCATCHER_DIR", "var/mail"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mailcatcher %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    folder = Path(args.dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.host, args.port, folder))


if __name__ == "__main__":
    main()
