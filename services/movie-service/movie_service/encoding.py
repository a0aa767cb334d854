"""gzip for seat maps: JSON with the same keys 10,000 times over (a 1 MB map becomes ~60 kB)."""

from __future__ import annotations

import asyncio
import gzip

GZIP_MIN_BYTES = 1024  # below this the header costs more than it saves
GZIP_IN_THREAD_BYTES = 64 * 1024  # bigger bodies are compressed off the event loop
GZIP_LEVEL = 5


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        if coding.strip().lower() != "gzip":
            continue
        name, _, value = params.strip().partition("=")
        if name.strip().lower() != "q":
            return True
        try:
            return float(value) > 0
        except ValueError:
            return False
    return False


async def gzip_body(body: bytes) -> bytes:
    """``body`` gzip-compressed (no timestamp, so equal bodies compress equally); a big one
    in a worker thread, since zlib releases the GIL while it works."""
    if len(body) >= GZIP_IN_THREAD_BYTES:
        return await asyncio.to_thread(gzip.compress, body, GZIP_LEVEL, mtime=0)
    return gzip.compress(body, GZIP_LEVEL, mtime=0)
