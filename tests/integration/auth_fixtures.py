"""Fixtures and helpers of the auth tests: the assembled app over real PostgreSQL, and a
`Church` helper that signs up through HTTP and keeps its tokens.

Import the fixtures into a test module with `from tests.integration.auth_fixtures import *`
(`api_client`, `outbox`), or use `make_api_client` for custom settings.
"""

from __future__ import annotations

import email
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ywmessaging import app as app_module
from ywmessaging.auth.passwords import Passwords
from ywmessaging.auth.state import AUTH
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "Correct horse battery staple"

__all__ = [
    "PASSWORD",
    "Church",
    "Client",
    "api_client",
    "api_settings",
    "bearer",
    "make_api_client",
    "outbox",
    "problem",
    "read_outbox",
    "register",
    "token_in",
]


def build_app(settings: Settings) -> web.Application:
    """create_app with every plug-in (auth's services among them)."""
    return app_module.create_app(settings)


@pytest.fixture
def api_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The session's settings with a private data dir (its outbox is this test's)."""
    return settings.with_(data_dir=tmp_path, log_format="console", log_level="warning")


@pytest.fixture
async def make_api_client(aiohttp_client: MakeClient,
                          registry_conn: Any) -> Callable[[Settings], Awaitable[Client]]:
    """Start the app for some settings; login throttle counters are cleared first."""

    async def make(s: Settings) -> Client:
        await registry_conn.execute("DELETE FROM login_throttle")
        return await aiohttp_client(build_app(s))

    return make


@pytest.fixture
async def api_client(make_api_client: Callable[[Settings], Awaitable[Client]],
                     api_settings: Settings) -> Client:
    """The assembled app, started, with a test client."""
    return await make_api_client(api_settings)


@pytest.fixture
def outbox(api_settings: Settings) -> Path:
    """Where the development email sender writes (the app's default sender)."""
    return api_settings.data_dir / "outbox"


def read_outbox(folder: Path, kind: str, to: str | None = None) -> list[str]:
    """Bodies of the messages of one kind (to one address), oldest first."""
    if not folder.exists():
        return []
    bodies = []
    for path in sorted(folder.glob(f"*-{kind}-*.eml")):
        msg = email.message_from_bytes(path.read_bytes())
        if to is not None and msg["To"] != to:
            continue
        payload = msg.get_payload(decode=True)
        assert isinstance(payload, bytes)
        bodies.append(payload.decode())
    return bodies


def token_in(body: str) -> str:
    """The token of a link in an email body."""
    found = re.search(r"#token=(\S+)", body)
    assert found, body
    return found.group(1)


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Church:
    """A church signed up through the API, with its owner's latest tokens."""

    client: Client
    email: str
    tenant_id: str
    admin_id: str
    access: str
    refresh: str
    password: str = PASSWORD
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        """The owner's Authorization header."""
        return bearer(self.access)


async def register(client: Client, *, name: str | None = None, email_addr: str | None = None,
                   password: str = PASSWORD) -> Church:
    """Sign a church up through `POST /auth/register` (asserting 201)."""
    tag = secrets.token_hex(4)
    addr = email_addr or f"owner-{tag}@example.org"
    resp = await client.post("/api/v1/auth/register", json={
        "church_name": name or f"Grace Church {tag}", "email": addr, "password": password,
        "first_name": "Ada", "last_name": "Owner", "timezone": "America/Chicago",
    })
    body = await resp.json()
    assert resp.status == 201, body
    return Church(client, addr, body["church_id"], body["admin_id"], body["access_token"],
                  body["refresh_token"], password)


async def problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json answer with this status and code; return its body."""
    body: dict[str, Any] = await resp.json(content_type=None)
    assert (resp.status, body.get("code")) == (status, code), body
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    return body


class CountingPasswords(Passwords):
    """The real argon2id hasher, counting the hashes and verifications it computes (how tests
    see that a burst or a made-up token did not reach the hasher)."""

    def __init__(self) -> None:
        super().__init__(2)
        self.hashes = 0
        self.verifications = 0

    async def hash(self, password: str) -> str:
        """Count, then hash."""
        self.hashes += 1
        return await super().hash(password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Count, then verify."""
        self.verifications += 1
        return await super().verify(stored, password)


def count_passwords(client: Client) -> CountingPasswords:
    """Put a CountingPasswords into the running app and return it."""
    counting = CountingPasswords()
    client.app[AUTH].passwords = counting
    return counting


@asynccontextmanager
async def church_db(pg_admin: PgTarget, settings: Settings, tenant_id: str) -> AsyncIterator[Any]:
    """An admin connection to a church's database (test set-up and assertions)."""
    conn = await pg.connect(pg_admin.with_db(
        f"{settings.db_prefix}_t_{tenant_id.replace('-', '')}"))
    try:
        yield conn
    finally:
        await conn.close()
