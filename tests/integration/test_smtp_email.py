"""Account emails over real SMTP (an aiosmtpd server on loopback): a password reset is
delivered with its link, the request does not wait for the server, and a server that is down
is retried and then logged, never failing the request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, register, token_in
from tests.integration.carrier_sim_fixtures import wait_until
from ywmessaging.auth.emails import Email
from ywmessaging.auth.smtp import SmtpEmailSender
from ywmessaging.config import Settings


class _Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox, port = _Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_a_password_reset_is_delivered_over_smtp(
        make_api_client: Callable[[Settings], Awaitable[Client]], api_settings: Settings,
        smtp_server: tuple[_Inbox, int]) -> None:
    inbox, port = smtp_server
    client = await make_api_client(api_settings.with_(
        smtp_url=f"smtp://127.0.0.1:{port}", email_from="Grace Texting <texts@grace.example>"))
    church = await register(client)
    resp = await client.post("/api/v1/auth/password-reset", json={"email": church.email})
    assert resp.status == 202

    async def arrived() -> bool:
        return bool(inbox.messages)
    await wait_until(arrived)
    sender, rcpts, msg = inbox.messages[0]
    assert (sender, rcpts) == ("texts@grace.example", [church.email])
    assert msg["Subject"] == "Reset your password" and msg["Message-ID"]
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    token = token_in(payload.decode())
    confirm = await client.post("/api/v1/auth/password-reset/confirm",
                                json={"token": token, "new_password": "a brand new passphrase 7"})
    assert confirm.status == 204


async def test_a_server_that_is_down_is_retried_then_given_up_without_blocking() -> None:
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{_free_port()}", "a@b.example",
                             backoff=(0.05, 0.05), timeout=2.0)
    started = asyncio.get_running_loop().time()
    await sender.send(Email("x@example.org", "Hi", "body", "test"))
    assert asyncio.get_running_loop().time() - started < 0.05     # queued, not delivered
    await sender.close(timeout=10)
    assert (sender.delivered, sender.failed) == (0, 1)


async def test_queued_mail_is_delivered_on_close(smtp_server: tuple[_Inbox, int]) -> None:
    inbox, port = smtp_server
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", "a@b.example")
    for i in range(3):
        await sender.send(Email(f"u{i}@example.org", f"Hi {i}", "body", "test"))
    await sender.close()
    assert sender.delivered == 3
    assert sorted(r[0] for _, r, _ in inbox.messages) == [
        "u0@example.org", "u1@example.org", "u2@example.org"]
