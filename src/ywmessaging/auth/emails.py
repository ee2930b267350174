"""Outgoing account emails behind one interface: SMTP in production (smtp.py), an outbox folder
in development, memory in tests.

Another sender (an email API) would implement `EmailSender.send`. Senders never log a
message's body: it holds single-use tokens.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import structlog

log = structlog.get_logger("ywm.email")


@dataclass(frozen=True)
class Email:
    """One message: recipient, subject, plain-text body, and its kind for logs."""

    to: str
    subject: str
    body: str
    kind: str


class EmailSender(Protocol):
    """Delivers account emails."""

    async def send(self, email: Email) -> None: ...


class OutboxEmailSender:
    """Writes each message as an `.eml` file (mode 0600) into a folder: the development outbox."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def send(self, email: Email) -> None:
        """Write the message file and log where it went (never its body)."""
        path = await asyncio.to_thread(self._write, email)
        log.info("email_written_to_outbox", kind=email.kind, to_domain=_domain(email.to),
                 file=str(path))

    def _write(self, email: Email) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        msg = EmailMessage()
        msg["To"], msg["Subject"] = email.to, email.subject
        msg["From"] = "no-reply@ywmessaging.dev"
        msg.set_content(email.body)
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = self.folder / f"{stamp}-{email.kind}-{uuid.uuid4().hex[:8]}.eml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(bytes(msg))
        return path


class MemoryEmailSender:
    """Keeps messages in a list (tests read them from the app's state)."""

    def __init__(self) -> None:
        self.sent: list[Email] = []

    async def send(self, email: Email) -> None:
        """Append the message."""
        self.sent.append(email)
        log.info("email_kept_in_memory", kind=email.kind, to_domain=_domain(email.to))


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1]


def password_reset_email(to: str, link: str, minutes: int) -> Email:
    """The password-reset message."""
    body = (
        "Someone asked to reset the password of your church texting account.\n\n"
        f"Choose a new password here (the link works once, for {minutes} minutes):\n{link}\n\n"
        "If this was not you, ignore this email: your password stays the same.\n"
    )
    return Email(to, "Reset your password", body, "password_reset")


def invitation_email(to: str, church: str, inviter: str, link: str, days: int) -> Email:
    """The co-admin invitation message."""
    body = (
        f"{inviter} invited you to help run {church}'s church texting account.\n\n"
        f"Set your password and sign in here (the link works once, for {days} days):\n{link}\n"
    )
    return Email(to, f"Invitation to {church}", body, "invitation")


def mfa_changed_email(to: str, *, enabled: bool) -> Email:
    """The notice sent when two-step sign-in is turned on or off."""
    state = "turned on" if enabled else "turned off"
    body = (
        f"Two-step sign-in was just {state} for your church texting account.\n\n"
        "If this was not you, reset your password now and tell your church's account owner:\n"
        "someone may be signed in as you.\n"
    )
    return Email(to, f"Two-step sign-in {state}", body, "mfa_changed")
