"""Account emails over SMTP (SMTP_URL), delivered in the background.

`send` only queues the message and returns, so a request that sends an email (password reset,
invitation) takes as long whether or not the address exists and whatever the mail server is
doing: no timing oracle, no request held by a slow server. A background task delivers each
message with aiosmtplib (STARTTLS when the server offers it, or required with
`?starttls=require`; implicit TLS with `smtps://`), trying three times with backoff, and logs
the outcome without the body (it holds single-use tokens). A message still queued when the
process stops is delivered during shutdown if that takes at most CLOSE_TIMEOUT, else logged as
dropped: the user asks again (reset links and invitations can be re-sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import structlog

from .emails import Email, _domain

log = structlog.get_logger("ywm.email")
QUEUE_SIZE = 1000
ATTEMPTS = 3
BACKOFF_S = (1.0, 5.0)      # waits before the second and third tries
SEND_TIMEOUT_S = 20.0
CLOSE_TIMEOUT = 10.0


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to connect, from SMTP_URL."""

    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool               # smtps://: TLS from the first byte
    start_tls: bool | None      # None: STARTTLS when offered; True: required


def parse_smtp_url(url: str) -> SmtpTarget:
    """smtp://[user[:password]@]host[:port][?starttls=require|never] or smtps://…; ValueError
    says what is wrong (never echoing the password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    mode = parse_qs(parts.query).get("starttls", ["auto"])[-1]
    if mode not in ("auto", "require", "never"):
        raise ValueError("starttls must be auto, require or never")
    implicit = parts.scheme == "smtps"
    if implicit and mode != "auto":
        raise ValueError("smtps:// is TLS already: leave starttls out")
    return SmtpTarget(
        host=parts.hostname, port=port or (465 if implicit else 587),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=implicit,
        start_tls=None if implicit else {"auto": None, "require": True, "never": False}[mode])


class SmtpEmailSender:
    """Queues account emails and delivers them over SMTP in the background."""

    def __init__(self, url: str, from_addr: str, *, backoff: tuple[float, ...] = BACKOFF_S,
                 timeout: float = SEND_TIMEOUT_S) -> None:
        self.target = parse_smtp_url(url)
        self.from_addr = from_addr
        self._backoff = backoff
        self._timeout = timeout
        self._queue: asyncio.Queue[Email] = asyncio.Queue(QUEUE_SIZE)
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0

    async def send(self, email: Email) -> None:
        """Queue the message (delivered in the background; never raises for the server)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="smtp_sender")
        try:
            self._queue.put_nowait(email)
        except asyncio.QueueFull:
            self.failed += 1
            log.error("email_dropped", kind=email.kind, to_domain=_domain(email.to),
                      reason="queue_full")

    def message(self, email: Email) -> EmailMessage:
        """The MIME message for one email."""
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.from_addr, email.to, email.subject
        msg["Message-ID"] = make_msgid(domain=_domain(self.from_addr.rstrip(">")))
        msg.set_content(email.body)
        return msg

    async def _run(self) -> None:
        while True:
            email = await self._queue.get()
            try:
                await self._deliver(email)
            finally:
                self._queue.task_done()

    async def _deliver(self, email: Email) -> None:
        t = self.target
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await aiosmtplib.send(
                    self.message(email), hostname=t.host, port=t.port, username=t.username,
                    password=t.password, use_tls=t.use_tls, start_tls=t.start_tls,
                    timeout=self._timeout)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                final = attempt == ATTEMPTS
                (log.error if final else log.warning)(
                    "email_send_failed", kind=email.kind, to_domain=_domain(email.to),
                    attempt=attempt, final=final, error=type(exc).__name__)
                if final:
                    self.failed += 1
                    return
                await asyncio.sleep(self._backoff[min(attempt, len(self._backoff)) - 1])
            else:
                self.delivered += 1
                log.info("email_sent", kind=email.kind, to_domain=_domain(email.to),
                         attempt=attempt)
                return

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Deliver what is queued (bounded), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.error("email_dropped", reason="shutdown", queued=self._queue.qsize())
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
