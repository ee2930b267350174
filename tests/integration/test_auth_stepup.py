"""Step-up on a signed-in session: MFA setup, enable and disable need the current password,
which is throttled and audited; password and MFA changes refuse older tokens (MFA tokens
included)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Church,
    Client,
    bearer,
    church_db,
    problem,
    read_outbox,
    register,
    token_in,
)
from ywmessaging.auth import mfa
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget

PW = {"password": PASSWORD}


def _code(secret: str, offset: int = 0) -> str:
    return mfa.totp_at(secret, mfa.current_step(time.time()) + offset)


async def _post(church: Church, path: str, body: dict[str, Any]) -> Any:
    return await church.client.post(f"/api/v1/auth/{path}", headers=church.auth, json=body)


async def _enrol(church: Church) -> str:
    """MFA on (with the password); the church's tokens refreshed afterwards."""
    setup = await _post(church, "mfa/setup", PW)
    secret: str = (await setup.json())["secret"]
    enable = await _post(church, "mfa/enable", {"code": _code(secret, -1), **PW})
    assert enable.status == 200, await enable.text()
    refreshed = await church.client.post("/api/v1/auth/refresh",
                                         json={"refresh_token": church.refresh})
    body = await refreshed.json()
    church.access, church.refresh = body["access_token"], body["refresh_token"]
    return secret


async def _mfa_token(church: Church, password: str = PASSWORD) -> str:
    resp = await church.client.post("/api/v1/auth/login",
                                    json={"email": church.email, "password": password})
    body = await resp.json()
    assert body.get("mfa_required") is True, body
    token: str = body["mfa_token"]
    return token


async def _state(pg_admin: PgTarget, settings: Settings, church: Church) -> tuple[Any, list[str]]:
    """(the owner's tokens_valid_after, the audit log's actions)."""
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        valid_after = await conn.fetchval("SELECT tokens_valid_after FROM admins WHERE id = $1",
                                          church.admin_id)
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log")]
    return valid_after, actions


async def test_a_stolen_session_alone_cannot_turn_mfa_on(
    api_client: Client, pg_admin: PgTarget, settings: Settings, registry_conn: Any,
) -> None:
    church = await register(api_client)
    await problem(await _post(church, "mfa/setup", {}), 422, "validation_failed")
    await problem(await _post(church, "mfa/setup", {"password": "a guessed password"}), 403,
                  "invalid_current_password")
    setup = await _post(church, "mfa/setup", PW)  # (the owner starts it; the thief finishes)
    secret = (await setup.json())["secret"]
    await problem(await _post(church, "mfa/enable", {"code": _code(secret)}), 422,
                  "validation_failed")
    await problem(await _post(church, "mfa/enable", {"code": _code(secret),
                                                     "password": "another guess"}),
                  403, "invalid_current_password")
    plain = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
    assert "access_token" in await plain.json()  # MFA stayed off
    _, actions = await _state(pg_admin, settings, church)
    assert {"mfa.setup_failed", "mfa.enable_failed"} <= set(actions)
    assert "mfa.enabled" not in actions
    # Wrong step-up passwords count toward the email's login lock (the login cleared them).
    await _post(church, "mfa/setup", {"password": "a third guess"})
    assert await registry_conn.fetchval("SELECT failures FROM login_throttle WHERE key = $1",
                                        f"email:{church.email}") == 1


async def test_mfa_disable_gives_one_answer_and_counts_password_failures(
    api_client: Client, outbox: Path, pg_admin: PgTarget, settings: Settings,
    registry_conn: Any,
) -> None:
    church = await register(api_client)
    # MFA off: the same 409 whatever the password (no oracle).
    for password in ("a wrong password", PASSWORD):
        await problem(await _post(church, "mfa/disable", {"password": password,
                                                          "code": "123456"}),
                      409, "mfa_not_enabled")
    before, _ = await _state(pg_admin, settings, church)
    secret = await _enrol(church)
    on, _ = await _state(pg_admin, settings, church)
    assert on > before  # MFA on refuses older tokens
    current = _code(secret)
    wrong_code = "000000" if current != "000000" else "111111"
    bad_password = await _post(church, "mfa/disable", {"password": "a wrong password",
                                                       "code": current})
    bad_code = await _post(church, "mfa/disable", {"password": PASSWORD, "code": wrong_code})
    a = await problem(bad_password, 403, "invalid_password_or_code")
    b = await problem(bad_code, 403, "invalid_password_or_code")
    a.pop("request_id", None)
    b.pop("request_id", None)
    assert a == b
    assert await registry_conn.fetchval("SELECT failures FROM login_throttle WHERE key = $1",
                                        f"email:{church.email}") == 1
    off = await _post(church, "mfa/disable", {"password": PASSWORD, "code": current})
    assert off.status == 204
    after, actions = await _state(pg_admin, settings, church)
    assert after > on  # MFA off too
    assert {"mfa.enabled", "mfa.disable_failed", "mfa.code_rejected",
            "mfa.disabled"} <= set(actions)
    assert len(read_outbox(outbox, "mfa_changed", to=church.email)) == 2


async def test_mfa_token_dies_with_a_password_reset_or_change(
    api_client: Client, outbox: Path, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    secret = await _enrol(church)
    before_reset = await _mfa_token(church)
    await api_client.post("/api/v1/auth/password-reset", json={"email": church.email})
    token = token_in(read_outbox(outbox, "password_reset", to=church.email)[0])
    reset = await api_client.post("/api/v1/auth/password-reset/confirm", json={
        "token": token, "new_password": "a fresh passphrase"})
    assert reset.status == 204
    code = _code(secret)
    await problem(await api_client.post("/api/v1/auth/mfa/verify", json={
        "mfa_token": before_reset, "code": code}), 401, "invalid_mfa_token")
    # Control: a token from after the reset works with the same code.
    fresh = await _mfa_token(church, "a fresh passphrase")
    ok = await api_client.post("/api/v1/auth/mfa/verify", json={"mfa_token": fresh,
                                                                  "code": code})
    assert ok.status == 200
    session = await ok.json()
    church.access = session["access_token"]
    # A password change (from a session) does the same to a pending MFA token.
    pending = await _mfa_token(church, "a fresh passphrase")
    before, _ = await _state(pg_admin, settings, church)
    changed = await _post(church, "password", {"current_password": "a fresh passphrase",
                                               "new_password": "yet another passphrase"})
    assert changed.status == 200
    after, actions = await _state(pg_admin, settings, church)
    assert after > before and "auth.password_changed" in actions
    await problem(await api_client.post("/api/v1/auth/mfa/verify", json={
        "mfa_token": pending, "code": _code(secret, 1)}), 401, "invalid_mfa_token")
    # The session that changed it goes on through its refresh token.
    again = await api_client.post("/api/v1/auth/refresh",
                                  json={"refresh_token": session["refresh_token"]})
    assert again.status == 200
    me = await api_client.get("/api/v1/auth/me",
                              headers=bearer((await again.json())["access_token"]))
    assert me.status == 200
