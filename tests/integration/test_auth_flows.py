"""Sign-up, login, refresh rotation and reuse, logout, password change, through HTTP."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Client,
    bearer,
    problem,
    register,
)
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget


async def test_register_then_me(api_client: Client) -> None:
    church = await register(api_client, name="Grace Fellowship")
    resp = await api_client.get("/api/v1/auth/me", headers=church.auth)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["role"] == "owner"
    assert body["admin"]["email"] == church.email and body["admin"]["mfa_enabled"] is False
    assert body["church"] == {"id": church.tenant_id, "name": "Grace Fellowship",
                              "timezone": "America/Chicago"}
    assert "password_hash" not in body["admin"]


async def test_login_normalizes_email_and_issues_tokens(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/auth/login", json={
        "email": "  " + church.email.upper() + " ", "password": PASSWORD})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert resp.headers["Cache-Control"] == "no-store"
    me = await api_client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    assert me.status == 200


async def test_unknown_email_and_wrong_password_look_the_same(api_client: Client) -> None:
    church = await register(api_client)
    wrong = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": "not the password"})
    unknown = await api_client.post("/api/v1/auth/login", json={
        "email": f"nobody-{secrets.token_hex(4)}@example.org", "password": "not the password"})
    a = await problem(wrong, 401, "invalid_credentials")
    b = await problem(unknown, 401, "invalid_credentials")
    for body in (a, b):
        body.pop("request_id", None)
    assert a == b
    assert dict(wrong.headers).keys() - {"X-Request-ID", "Date"} == \
        dict(unknown.headers).keys() - {"X-Request-ID", "Date"}


async def test_duplicate_email_is_409(api_client: Client) -> None:
    church = await register(api_client)
    resp = await api_client.post("/api/v1/auth/register", json={
        "church_name": "Second Church", "email": church.email.upper(), "password": PASSWORD,
        "first_name": "B", "last_name": "C"})
    body = await problem(resp, 409, "email_taken")
    assert body["field"] == "email"


async def _counts(pg_admin: PgTarget, settings: Settings, registry_conn: Any,
                  addr: str) -> tuple[int, int, int, int]:
    conn = await pg.connect(pg_admin)
    try:
        like = settings.db_prefix + r"\_t\_%"
        dbs = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname LIKE $1", like)
        roles = await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname LIKE $1",
                                    settings.db_prefix + r"\_r\_%")
    finally:
        await conn.close()
    tenants = await registry_conn.fetchval("SELECT count(*) FROM tenants")
    logins = await registry_conn.fetchval("SELECT count(*) FROM admin_logins WHERE email = $1",
                                          addr)
    return dbs, roles, tenants, logins


async def test_concurrent_registration_same_email_exactly_one_wins(
    api_client: Client, pg_admin: PgTarget, settings: Settings, registry_conn: Any,
) -> None:
    addr = f"race-{secrets.token_hex(4)}@example.org"
    before = await _counts(pg_admin, settings, registry_conn, addr)
    resps = await asyncio.gather(*(api_client.post("/api/v1/auth/register", json={
        "church_name": f"Race Church {i}", "email": addr, "password": PASSWORD,
        "first_name": "R", "last_name": "C"}) for i in range(4)))
    statuses = sorted(r.status for r in resps)
    assert statuses == [201, 409, 409, 409], statuses
    for r in resps:
        if r.status == 409:
            await problem(r, 409, "email_taken")
    after = await _counts(pg_admin, settings, registry_conn, addr)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 1, 1)
    assert after[3] == 1


async def test_refresh_rotates_and_old_token_is_superseded_then_reuse_revokes(
    api_client: Client, registry_conn: Any, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    first = church.refresh
    resp = await api_client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    body = await resp.json()
    assert resp.status == 200, body
    second = body["refresh_token"]
    assert second != first
    assert (await api_client.get("/api/v1/auth/me",
                                 headers=bearer(body["access_token"]))).status == 200
    # Within a few seconds of the rotation (two tabs): 409, nothing revoked.
    again = await api_client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    await problem(again, 409, "refresh_token_superseded")
    # Later, the same old token is theft: the whole family goes.
    await _backdate_rotation(pg_admin, settings, church.tenant_id)
    reused = await api_client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    await problem(reused, 401, "refresh_token_reused")
    after = await api_client.post("/api/v1/auth/refresh", json={"refresh_token": second})
    await problem(after, 401, "invalid_refresh_token")
    me = await api_client.get("/api/v1/auth/me", headers=bearer(body["access_token"]))
    await problem(me, 401, "invalid_token")
    audit = await _audit_actions(pg_admin, settings, church.tenant_id)
    assert "auth.refresh_token_reused" in audit


async def _tenant_conn(pg_admin: PgTarget, settings: Settings, tenant_id: str) -> Any:
    db = f"{settings.db_prefix}_t_{tenant_id.replace('-', '')}"
    return await pg.connect(pg_admin.with_db(db))


async def _backdate_rotation(pg_admin: PgTarget, settings: Settings, tenant_id: str) -> None:
    conn = await _tenant_conn(pg_admin, settings, tenant_id)
    try:
        await conn.execute("UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute'"
                           " WHERE rotated_at IS NOT NULL")
    finally:
        await conn.close()


async def _audit_actions(pg_admin: PgTarget, settings: Settings, tenant_id: str) -> list[str]:
    conn = await _tenant_conn(pg_admin, settings, tenant_id)
    try:
        return [r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY id")]
    finally:
        await conn.close()


async def test_logout_revokes_family_and_jti(api_client: Client) -> None:
    church = await register(api_client)
    other = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
    other_tokens = await other.json()
    resp = await api_client.post("/api/v1/auth/logout", headers=church.auth)
    assert resp.status == 204
    await problem(await api_client.get("/api/v1/auth/me", headers=church.auth), 401,
                  "invalid_token")
    await problem(await api_client.post("/api/v1/auth/refresh",
                                        json={"refresh_token": church.refresh}),
                  401, "invalid_refresh_token")
    # The other session is untouched.
    assert (await api_client.get("/api/v1/auth/me",
                                 headers=bearer(other_tokens["access_token"]))).status == 200
    # Logging out with only a refresh token ends that session too.
    out = await api_client.post("/api/v1/auth/logout",
                                json={"refresh_token": other_tokens["refresh_token"]})
    assert out.status == 204
    await problem(await api_client.get("/api/v1/auth/me",
                                       headers=bearer(other_tokens["access_token"])),
                  401, "invalid_token")


async def test_password_change_revokes_other_sessions(api_client: Client) -> None:
    church = await register(api_client)
    other = await (await api_client.post("/api/v1/auth/login", json={
        "email": church.email, "password": PASSWORD})).json()
    wrong = await api_client.post("/api/v1/auth/password", headers=church.auth, json={
        "current_password": "not it at all", "new_password": "a brand new passphrase"})
    await problem(wrong, 403, "invalid_current_password")
    weak = await api_client.post("/api/v1/auth/password", headers=church.auth, json={
        "current_password": PASSWORD, "new_password": "password123"})
    assert (await problem(weak, 422, "weak_password"))["field"] == "new_password"
    ok = await api_client.post("/api/v1/auth/password", headers=church.auth, json={
        "current_password": PASSWORD, "new_password": "a brand new passphrase"})
    assert ok.status == 200 and (await ok.json())["sessions_revoked"] == 1
    # This session goes on through its refresh token (older access tokens are refused).
    mine = await api_client.post("/api/v1/auth/refresh", json={"refresh_token": church.refresh})
    assert mine.status == 200
    assert (await api_client.get("/api/v1/auth/me", headers=bearer(
        (await mine.json())["access_token"]))).status == 200
    await problem(await api_client.get("/api/v1/auth/me",
                                       headers=bearer(other["access_token"])),
                  401, "invalid_token")
    old = await api_client.post("/api/v1/auth/login",
                                json={"email": church.email, "password": PASSWORD})
    await problem(old, 401, "invalid_credentials")
    new = await api_client.post("/api/v1/auth/login", json={
        "email": church.email, "password": "a brand new passphrase"})
    assert new.status == 200


async def test_validation_errors(api_client: Client) -> None:
    unknown = await api_client.post("/api/v1/auth/login", json={
        "email": "a@example.org", "password": "x", "tenant_id": "nope"})
    assert (await problem(unknown, 422, "validation_failed"))["field"] == "tenant_id"
    bad_json = await api_client.post("/api/v1/auth/login", data=b"{not json",
                                     headers={"Content-Type": "application/json"})
    await problem(bad_json, 400, "invalid_json")
    array = await api_client.post("/api/v1/auth/login", json=["a"])
    await problem(array, 400, "invalid_json")
    form = await api_client.post("/api/v1/auth/login", data={"email": "a@example.org"})
    await problem(form, 415, "unsupported_media_type")
    weak = await api_client.post("/api/v1/auth/register", json={
        "church_name": "Weak Church", "email": "weak@example.org", "password": "short",
        "first_name": "W", "last_name": "C"})
    assert (await problem(weak, 422, "weak_password"))["field"] == "password"
    zone = await api_client.post("/api/v1/auth/register", json={
        "church_name": "Mars Church", "email": "mars@example.org", "password": PASSWORD,
        "first_name": "M", "last_name": "C", "timezone": "Mars/Olympus_Mons"})
    assert (await problem(zone, 422, "validation_failed"))["field"] == "timezone"


async def test_every_api_route_has_a_permission_rule(api_client: Client) -> None:
    """Deny by default: a route under /api/v1 without @public or @requires is a defect."""
    from ywmessaging import keys
    from ywmessaging.auth.permissions import route_permission

    api = api_client.app[keys.API_V1]
    routes = [r for r in api.router.routes() if r.method != "HEAD"]
    assert len(routes) >= 18
    unmarked = [r.resource.canonical if r.resource else "?" for r in routes
                if route_permission(r.handler) is None]
    assert unmarked == []
