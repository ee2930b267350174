"""TOTP enrolment, login with MFA, replay, recovery codes, lockout and disable, over HTTP."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import PASSWORD, Church, Client, bearer, problem, register
from ywmessaging.auth import mfa
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget

_PW = {"password": PASSWORD}  # setup, enable and disable need the current password


def _code(secret: str, offset: int = 0) -> str:
    return mfa.totp_at(secret, mfa.current_step(time.time()) + offset)


async def _refresh(client: Client, church: Church) -> None:
    """New tokens for the church's session (MFA on/off refuses access tokens issued before)."""
    resp = await client.post("/api/v1/auth/refresh", json={"refresh_token": church.refresh})
    body = await resp.json()
    assert resp.status == 200, body
    church.access, church.refresh = body["access_token"], body["refresh_token"]


async def _enrol(client: Client, church: Church) -> tuple[str, list[str], str]:
    """Set up and enable MFA; (secret, recovery codes, the code that enabled it)."""
    setup = await client.post("/api/v1/auth/mfa/setup", headers=church.auth, json=_PW)
    body = await setup.json()
    assert setup.status == 200, body
    uri = urlparse(body["otpauth_uri"])
    assert uri.scheme == "otpauth" and parse_qs(uri.query)["secret"] == [body["secret"]]
    secret = body["secret"]
    used = _code(secret, -1)
    enable = await client.post("/api/v1/auth/mfa/enable", headers=church.auth,
                               json={"code": used, **_PW})
    codes = (await enable.json())["recovery_codes"]
    assert enable.status == 200 and len(codes) == 10
    await _refresh(client, church)
    return secret, codes, used


async def _password_step(client: Client, church: Church) -> str:
    resp = await client.post("/api/v1/auth/login",
                             json={"email": church.email, "password": PASSWORD})
    body = await resp.json()
    assert resp.status == 200 and body["mfa_required"] is True, body
    assert "access_token" not in body
    token: str = body["mfa_token"]
    return token


async def _verify(client: Client, mfa_token: str, code: str) -> Any:
    return await client.post("/api/v1/auth/mfa/verify",
                             json={"mfa_token": mfa_token, "code": code})


async def test_enrol_login_with_totp_and_replay_refused(
    api_client: Client, pg_admin: PgTarget, settings: Any,
) -> None:
    church = await register(api_client)
    secret, _codes, enabling_code = await _enrol(api_client, church)
    # The secret is stored encrypted, not in clear.
    conn = await pg.connect(pg_admin.with_db(
        f"{settings.db_prefix}_t_{church.tenant_id.replace('-', '')}"))
    try:
        stored = bytes(await conn.fetchval("SELECT totp_secret_encrypted FROM admin_mfa"))
    finally:
        await conn.close()
    assert secret.encode() not in stored
    mfa_token = await _password_step(api_client, church)
    await problem(await api_client.get("/api/v1/auth/me", headers=bearer(mfa_token)), 401,
                  "invalid_token")
    # The code that enabled MFA cannot be used again; the current one works.
    await problem(await _verify(api_client, mfa_token, enabling_code), 400,
                  "invalid_mfa_code")
    code = _code(secret)
    ok = await _verify(api_client, mfa_token, code)
    tokens = await ok.json()
    assert ok.status == 200 and tokens["token_type"] == "Bearer", tokens
    me = await (await api_client.get("/api/v1/auth/me",
                                     headers=bearer(tokens["access_token"]))).json()
    assert me["admin"]["mfa_enabled"] is True
    # The MFA token is single use, and the same TOTP code is refused in a new login (replay).
    await problem(await _verify(api_client, mfa_token, _code(secret, 1)), 401,
                  "invalid_mfa_token")
    second = await _password_step(api_client, church)
    await problem(await _verify(api_client, second, code), 400, "invalid_mfa_code")


async def test_recovery_code_works_once(api_client: Client) -> None:
    church = await register(api_client)
    _secret, codes, _ = await _enrol(api_client, church)
    first = await _password_step(api_client, church)
    ok = await _verify(api_client, first, codes[0].lower())
    assert ok.status == 200
    second = await _password_step(api_client, church)
    await problem(await _verify(api_client, second, codes[0]), 400, "invalid_mfa_code")
    me = await (await api_client.get("/api/v1/auth/me", headers=bearer(
        (await ok.json())["access_token"]))).json()
    assert me["admin"]["mfa_enabled"] is True


async def test_wrong_codes_lock_mfa(api_client: Client) -> None:
    church = await register(api_client)
    secret, _, _ = await _enrol(api_client, church)
    token = await _password_step(api_client, church)
    current = _code(secret)
    wrong = "000000" if current != "000000" else "111111"
    for _ in range(4):
        await problem(await _verify(api_client, token, wrong), 400, "invalid_mfa_code")
    locked = await _verify(api_client, token, wrong)
    await problem(locked, 429, "mfa_locked")
    assert int(locked.headers["Retry-After"]) > 0
    # Even the right code waits for the lock to pass.
    await problem(await _verify(api_client, token, current), 429, "mfa_locked")


async def test_regenerate_and_disable(api_client: Client) -> None:
    church = await register(api_client)
    secret, old_codes, _ = await _enrol(api_client, church)
    regen = await api_client.post("/api/v1/auth/mfa/recovery-codes", headers=church.auth,
                                  json={"code": _code(secret)})
    new_codes = (await regen.json())["recovery_codes"]
    assert regen.status == 200 and set(new_codes).isdisjoint(old_codes)
    token = await _password_step(api_client, church)
    await problem(await _verify(api_client, token, old_codes[1]), 400, "invalid_mfa_code")
    # Disabling needs the password and a code.
    bad = await api_client.post("/api/v1/auth/mfa/disable", headers=church.auth,
                                json={"password": "not the password", "code": new_codes[0]})
    await problem(bad, 403, "invalid_password_or_code")
    off = await api_client.post("/api/v1/auth/mfa/disable", headers=church.auth,
                                json={"password": PASSWORD, "code": new_codes[0]})
    assert off.status == 204
    await _refresh(api_client, church)
    plain = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
    assert "access_token" in await plain.json()
    again = await api_client.post("/api/v1/auth/mfa/disable", headers=church.auth,
                                  json={"password": PASSWORD, "code": "123456"})
    await problem(again, 409, "mfa_not_enabled")


async def test_setup_twice_while_enabled_is_409(api_client: Client) -> None:
    church = await register(api_client)
    await _enrol(api_client, church)
    await problem(await api_client.post("/api/v1/auth/mfa/setup", headers=church.auth,
                                        json=_PW), 409, "mfa_already_enabled")
    await problem(await api_client.post("/api/v1/auth/mfa/enable", headers=church.auth,
                                        json={"code": "123456", **_PW}), 409,
                  "mfa_already_enabled")


async def test_enable_without_setup_and_with_a_wrong_code(api_client: Client) -> None:
    church = await register(api_client)
    await problem(await api_client.post("/api/v1/auth/mfa/enable", headers=church.auth,
                                        json={"code": "123456", **_PW}), 409, "mfa_not_set_up")
    setup = await (await api_client.post("/api/v1/auth/mfa/setup", headers=church.auth,
                                         json=_PW)).json()
    current = _code(setup["secret"])
    wrong = "000000" if current != "000000" else "111111"
    await problem(await api_client.post("/api/v1/auth/mfa/enable", headers=church.auth,
                                        json={"code": wrong, **_PW}), 400, "invalid_mfa_code")
    plain = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
    assert "access_token" in await plain.json()  # not enabled by a wrong code
