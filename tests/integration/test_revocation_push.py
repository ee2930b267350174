"""Revocations reach every process: two real `ywm serve` processes over one registry.

A token warmed up in process B (verified and cached there) is refused by B within a second of
its session being ended, or its admin's role changed, through process A. The second half checks
the catch-up read: a process whose listener hears nothing still applies a revocation within
seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.auth_fixtures import PASSWORD, bearer, read_outbox, token_in
from tests.integration.test_serve_command import _db_env, _finish, _free_port, _wait_ready, _ywm
from ywmessaging.auth.revocations import POLL_DOWN_S, Revocations
from ywmessaging.auth.tokens import Keyring, Tokens
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget

WITHIN_S = 1.0


@pytest.fixture
async def two_servers(settings: Settings, tmp_path: Path,
                      registry_conn: Any) -> AsyncIterator[tuple[str, str, Path]]:
    """Two `ywm serve` processes on one registry, sharing a data dir (the email outbox)."""
    await registry_conn.execute("DELETE FROM login_throttle")
    env = _db_env(settings, YWM_DATA_DIR=str(tmp_path), YWM_LOG_LEVEL="warning")
    ports = [_free_port(), _free_port()]
    procs = [await _ywm("serve", "--port", str(p), env=env) for p in ports]
    try:
        for proc, port in zip(procs, ports, strict=True):
            await _wait_ready(proc, port)
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", tmp_path / "outbox"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in procs:
            await _finish(proc)


async def _json(resp: aiohttp.ClientResponse, status: int) -> Any:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    return body


async def _refused_within(http: aiohttp.ClientSession, url: str, token: str) -> float:
    """Seconds until `url` answers 401 for `token` (fails after WITHIN_S + a margin)."""
    start = time.monotonic()
    while time.monotonic() - start < WITHIN_S + 2.0:
        async with http.get(url, headers=bearer(token)) as resp:
            if resp.status == 401:
                assert (await resp.json())["code"] == "invalid_token"
                return time.monotonic() - start
            assert resp.status == 200
        await asyncio.sleep(0.02)
    raise AssertionError("the revoked token was still accepted")


async def _register(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    tag = secrets.token_hex(4)
    body = await _json(await http.post(f"{base}/api/v1/auth/register", json={
        "church_name": f"Two Servers {tag}", "email": f"owner-{tag}@example.org",
        "password": PASSWORD, "first_name": "Ada", "last_name": "Owner",
        "timezone": "America/Chicago"}), 201)
    return dict(body)


async def test_logout_in_one_process_is_refused_by_the_other_within_a_second(
        two_servers: tuple[str, str, Path]) -> None:
    a, b, _ = two_servers
    async with aiohttp.ClientSession() as http:
        church = await _register(http, a)
        token = church["access_token"]
        for _ in range(3):  # B verifies and caches the token
            await _json(await http.get(f"{b}/api/v1/members", headers=bearer(token)), 200)
        await _json(await http.post(f"{a}/api/v1/auth/logout", headers=bearer(token)), 204)
        took = await _refused_within(http, f"{b}/api/v1/members", token)
        assert took < WITHIN_S, took
        async with http.get(f"{a}/api/v1/members", headers=bearer(token)) as resp:
            assert resp.status == 401  # and A, which ended it, at once


async def test_a_role_change_in_one_process_applies_in_the_other_within_a_second(
        two_servers: tuple[str, str, Path]) -> None:
    a, b, outbox = two_servers
    async with aiohttp.ClientSession() as http:
        owner = await _register(http, a)
        addr = f"helper-{secrets.token_hex(4)}@example.org"
        invited = await _json(await http.post(f"{a}/api/v1/admins", headers=bearer(
            owner["access_token"]), json={"email": addr, "first_name": "Hal",
                                          "last_name": "Helper", "role": "owner"}), 201)
        mail = read_outbox(outbox, "invitation", to=addr)
        helper = await _json(await http.post(f"{a}/api/v1/auth/invitations/accept", json={
            "token": token_in(mail[0]), "password": "co-admin passphrase"}), 200)
        # The helper, a second owner, is known to B (its token verified and cached there).
        token = helper["access_token"]
        await _json(await http.get(f"{b}/api/v1/admins", headers=bearer(token)), 200)
        await _json(await http.patch(f"{a}/api/v1/admins/{invited['id']}", headers=bearer(
            owner["access_token"]), json={"role": "admin"}), 200)
        took = await _refused_within(http, f"{b}/api/v1/members", token)
        assert took < WITHIN_S, took
        # Logged in again, the helper is an admin everywhere: owner-only routes are 403 on B.
        again = await _json(await http.post(f"{b}/api/v1/auth/login", json={
            "email": addr, "password": "co-admin passphrase"}), 200)
        async with http.post(f"{b}/api/v1/admins", headers=bearer(again["access_token"]), json={
                "email": f"x-{secrets.token_hex(3)}@example.org", "first_name": "X",
                "last_name": "Y", "role": "admin"}) as resp:
            assert resp.status == 403, await resp.text()
        await _json(await http.get(f"{b}/api/v1/members",
                                   headers=bearer(again["access_token"])), 200)


async def test_a_process_that_hears_nothing_catches_up_within_seconds(
        settings: Settings) -> None:
    """No listener at all: the catch-up loop alone applies a revocation pushed elsewhere."""
    assert settings.database_url
    async with await pg.create_pool(PgTarget.parse(settings.database_url),
                                    max_size=2) as registry_pool:
        await _catch_up_without_listener(settings, registry_pool)


async def _catch_up_without_listener(settings: Settings, registry_pool: Any) -> None:
    pusher = Revocations(registry_pool, settings)
    deaf = Revocations(registry_pool, settings)
    await deaf.catch_up()
    tokens = Tokens(settings, Keyring.from_settings(settings))
    tenant, admin, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    _, claims = tokens.issue_access(admin_id=admin, tenant_id=tenant, role="owner",
                                    session_id=session, valid_after_us=1)
    wake = asyncio.Event()
    loop = asyncio.create_task(deaf.run(wake))
    try:
        assert not deaf.deny.refuses(claims)
        await pusher.session(tenant, session)
        assert pusher.deny.refuses(claims)  # the pushing process applies it at once
        start = time.monotonic()
        while not deaf.deny.refuses(claims):
            assert time.monotonic() - start < POLL_DOWN_S * 3, "never caught up"
            await asyncio.sleep(0.05)
        # An admin revocation: tokens below the new tokens_valid_after, not those at it.
        other = uuid.uuid4()
        _, old = tokens.issue_access(admin_id=admin, tenant_id=tenant, role="owner",
                                     session_id=other, valid_after_us=100)
        _, new = tokens.issue_access(admin_id=admin, tenant_id=tenant, role="owner",
                                     session_id=other, valid_after_us=200)
        await pusher.admin(tenant, admin, 200)
        start = time.monotonic()
        while not deaf.deny.refuses(old):
            assert time.monotonic() - start < POLL_DOWN_S * 3, "never caught up"
            await asyncio.sleep(0.05)
        assert not deaf.deny.refuses(new)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_an_operator_revokes_a_churchs_sessions_from_the_command_line(
        two_servers: tuple[str, str, Path], settings: Settings) -> None:
    a, b, _ = two_servers
    env = _db_env(settings, YWM_LOG_LEVEL="warning")
    async with aiohttp.ClientSession() as http:
        church = await _register(http, a)
        token = church["access_token"]
        await _json(await http.get(f"{b}/api/v1/members", headers=bearer(token)), 200)
        code, _out, err = await _finish(await _ywm(
            "sessions", "revoke", church["church_id"], "--admin", str(uuid.uuid4()), env=env))
        assert code == 1 and err.startswith("ywm: ") and err.count("\n") == 1, err
        await _json(await http.get(f"{b}/api/v1/members", headers=bearer(token)), 200)
        code, out, err = await _finish(await _ywm(
            "sessions", "revoke", church["church_id"], "--all", "--ticket", "T-1", env=env))
        assert code == 0, err
        assert "revoked 1 session(s) of 1 admin(s)" in out
        took = await _refused_within(http, f"{b}/api/v1/members", token)
        assert took < WITHIN_S, took
        async with http.post(f"{a}/api/v1/auth/refresh", json={
                "refresh_token": church["refresh_token"]}) as resp:
            assert resp.status == 401, await resp.text()
