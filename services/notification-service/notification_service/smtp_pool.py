"""A few SMTP connections kept open between mails, so a mail costs MAIL, RCPT and DATA only.

Opening a connection per mail (connect, greeting, EHLO, QUIT, and a thread hop for the local
host name) was about a quarter of notification's CPU per mail (docs/benchmarks.md). Each
connection carries one mail at a time. Idle ones are closed with QUIT after
``idle_seconds``, and all of them at shutdown.

A connection the server closed while idle is noticed before use and replaced. One can also
turn out dead only once used (closed just then, or answered 421). When that happens before
DATA, the server cannot have taken the message, so it is sent again once on a new
connection. From DATA on it may have been taken: the failure is raised as it always was,
and the consumer's retry decides, so no mail goes out twice more often than with one
connection per mail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiosmtplib
from aiosmtplib.response import SMTPResponse

logger = logging.getLogger("notification_service.smtp_pool")
SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)
CLOSING = 421  # "service not available, closing transmission channel"
QUIT_TIMEOUT_SECONDS = 2.0  # an idle connection answers QUIT at once, or is simply closed


class PooledSMTP(aiosmtplib.SMTP):
    """An SMTP client that knows whether its current mail got as far as DATA."""

    data_started = False
    idle_since = 0.0

    async def data(self, *args: Any, **kwargs: Any) -> SMTPResponse:
        self.data_started = True
        return await super().data(*args, **kwargs)


def never_accepted(smtp: PooledSMTP, exc: BaseException) -> bool:
    """The connection was lost, or closed with 421, before DATA: the server has no copy."""
    if smtp.data_started:
        return False
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code == CLOSING
    return isinstance(exc, ConnectionError)


class SmtpPool:
    """Up to ``size`` open connections made by ``connect``; idle ones live ``idle_seconds``."""

    def __init__(self, connect: Callable[[], Awaitable[PooledSMTP]], size: int, idle_seconds: float) -> None:
        self._connect, self.idle_seconds = connect, idle_seconds
        self._slots = asyncio.Semaphore(size)
        self._idle: list[PooledSMTP] = []  # oldest first; the newest is reused first
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    async def sendmail(self, sender: str, recipient: str, message: bytes, options: list[str]) -> None:
        """Send one mail; a reused connection found dead before DATA is replaced once."""
        async with self._slots:
            reused = self._take_idle()
            if reused is not None:
                try:
                    return await self._send_on(reused, sender, recipient, message, options)
                except SMTP_ERRORS as exc:
                    if not never_accepted(reused, exc):
                        raise
                    logger.info("reused SMTP connection was closed (%s); sending on a new one", exc)
            await self._send_on(await self._connect(), sender, recipient, message, options)

    async def _send_on(
        self, smtp: PooledSMTP, sender: str, recipient: str, message: bytes, options: list[str]
    ) -> None:
        smtp.data_started = False
        try:
            await smtp.sendmail(sender, [recipient], message, mail_options=options)
        except BaseException:
            smtp.close()  # its state is unknown: never reused
            raise
        await self._put_back(smtp)

    def _take_idle(self) -> PooledSMTP | None:
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp
            smtp.close()  # the server closed it while idle
        return None

    async def _put_back(self, smtp: PooledSMTP) -> None:
        if self._closed or self.idle_seconds <= 0:
            await _quit(smtp)
            return
        smtp.idle_since = asyncio.get_running_loop().time()
        self._idle.append(smtp)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._close_idle(), name="smtp-pool-idle")

    async def _close_idle(self) -> None:
        """Quit each connection idle for ``idle_seconds``; end when none is idle."""
        loop = asyncio.get_running_loop()
        while self._idle:
            await asyncio.sleep(self._idle[0].idle_since + self.idle_seconds - loop.time())
            expired = [s for s in self._idle if loop.time() - s.idle_since >= self.idle_seconds]
            self._idle = [s for s in self._idle if s not in expired]
            await asyncio.gather(*(_quit(smtp) for smtp in expired))

    async def close(self) -> None:
        """Quit the idle connections; one still sending is quit when its mail is done."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(smtp) for smtp in idle))


async def _quit(smtp: PooledSMTP) -> None:
    try:
        await smtp.quit(timeout=QUIT_TIMEOUT_SECONDS)
    except SMTP_ERRORS:
        pass  # closing anyway
    finally:
        smtp.close()
