"""Login throttling and lockout in the registry, no enumeration, password reset."""

from __future__ import annotations

import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Client,
    problem,
    read_outbox,
    register,
    token_in,
)
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget


async def _login(client: Client, email: str, password: str) -> Any:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def _backdate(registry_conn: Any, email: str, *, unlock: bool = False) -> None:
    """Time travel: the last failure a minute ago (and the lock over, if asked)."""
    await registry_conn.execute(
        "UPDATE login_throttle SET last_failure_at = now() - interval '1 minute',"
        " locked_until = CASE WHEN $2 THEN now() - interval '1 second' ELSE locked_until END"
        " WHERE key = $1", f"email:{email}", unlock)


async def _walk_to_lock(client: Client, registry_conn: Any, email: str) -> None:
    for _ in range(5):
        await problem(await _login(client, email, "wrong password!"), 401, "invalid_credentials")
    throttled = await _login(client, email, PASSWORD)
    await problem(throttled, 429, "login_throttled")
    assert int(throttled.headers["Retry-After"]) >= 1
    for _ in range(2):  # failures 6 and 7, each after its delay
        await _backdate(registry_conn, email)
        await problem(await _login(client, email, "wrong password!"), 401,
                      "invalid_credentials")
    await _backdate(registry_conn, email)
    locking = await _login(client, email, "wrong password!")  # failure 8 locks
    await problem(locking, 429, "login_locked")
    assert 800 < int(locking.headers["Retry-After"]) <= 900


async def test_lockout_and_its_expiry(api_client: Client, registry_conn: Any) -> None:
    church = await register(api_client)
    await _walk_to_lock(api_client, registry_conn, church.email)
    locked = await _login(api_client, church.email, PASSWORD)  # even the right password
    await problem(locked, 429, "login_locked")
    await _backdate(registry_conn, church.email, unlock=True)
    ok = await _login(api_client, church.email, PASSWORD)
    assert ok.status == 200
    assert await registry_conn.fetchval("SELECT count(*) FROM login_throttle WHERE key = $1",
                                        f"email:{church.email}") == 0


async def test_unknown_email_locks_the_same_way(api_client: Client, registry_conn: Any) -> None:
    await _walk_to_lock(api_client, registry_conn, f"ghost-{secrets.token_hex(4)}@example.org")


async def test_lock_events_reach_the_audit_log(api_client: Client, registry_conn: Any,
                                               pg_admin: PgTarget, settings: Any) -> None:
    church = await register(api_client)
    await _walk_to_lock(api_client, registry_conn, church.email)
    conn = await pg.connect(pg_admin.with_db(
        f"{settings.db_prefix}_t_{church.tenant_id.replace('-', '')}"))
    try:
        rows = await conn.fetch("SELECT action, admin_id, ip, detail FROM audit_log ORDER BY id")
    finally:
        await conn.close()
    actions = [r["action"] for r in rows]
    assert actions.count("auth.login_failed") == 7 and actions[-1] == "auth.login_locked"
    assert all(str(r["admin_id"]) == church.admin_id for r in rows[1:])
    assert PASSWORD not in str([dict(r) for r in rows])


async def test_wrong_password_and_unknown_email_take_similar_time(
    api_client: Client, registry_conn: Any,
) -> None:
    church = await register(api_client)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    await _login(api_client, church.email, "warm up the pool")
    for _ in range(7):
        for kind, addr in (("known", church.email),
                           ("unknown", f"nobody-{secrets.token_hex(3)}@example.org")):
            await registry_conn.execute("DELETE FROM login_throttle")
            t0 = time.perf_counter()
            resp = await _login(api_client, addr, "definitely wrong")
            timings[kind].append(time.perf_counter() - t0)
            assert resp.status == 401
    known, unknown = (statistics.median(timings[k]) for k in ("known", "unknown"))
    # argon2id dominates both; the known path adds one tenant query and one audit insert.
    assert abs(known - unknown) < 0.35 * max(known, unknown), timings


async def test_password_reset_is_single_use_and_ends_sessions(
    api_client: Client, outbox: Path, registry_conn: Any,
) -> None:
    church = await register(api_client)
    t0 = time.perf_counter()
    known = await api_client.post("/api/v1/auth/password-reset", json={"email": church.email})
    t1 = time.perf_counter()
    unknown = await api_client.post("/api/v1/auth/password-reset",
                                    json={"email": "nobody-here@example.org"})
    t2 = time.perf_counter()
    assert (known.status, unknown.status) == (202, 202)
    assert abs((t1 - t0) - (t2 - t1)) < 0.1  # both padded to the same floor
    assert await known.json() == await unknown.json()
    mails = read_outbox(outbox, "password_reset", to=church.email)
    assert len(mails) == 1 and len(read_outbox(outbox, "password_reset")) == 1
    token = token_in(mails[0])
    weak = await api_client.post("/api/v1/auth/password-reset/confirm",
                                 json={"token": token, "new_password": church.email})
    await problem(weak, 422, "weak_password")  # refused before the token is spent
    # A reset also lifts a lock on the email.
    await _walk_to_lock(api_client, registry_conn, church.email)
    ok = await api_client.post("/api/v1/auth/password-reset/confirm",
                               json={"token": token, "new_password": "fresh start passphrase"})
    assert ok.status == 204
    again = await api_client.post("/api/v1/auth/password-reset/confirm",
                                  json={"token": token, "new_password": "another passphrase"})
    await problem(again, 400, "invalid_reset_token")
    await problem(await api_client.get("/api/v1/auth/me", headers=church.auth), 401,
                  "invalid_token")
    await problem(await api_client.post("/api/v1/auth/refresh",
                                        json={"refresh_token": church.refresh}),
                  401, "invalid_refresh_token")
    await problem(await _login(api_client, church.email, PASSWORD), 401, "invalid_credentials")
    assert (await _login(api_client, church.email, "fresh start passphrase")).status == 200


async def test_expired_or_forged_reset_tokens(api_client: Client, outbox: Path,
                                              pg_admin: PgTarget, settings: Any) -> None:
    church = await register(api_client)
    await api_client.post("/api/v1/auth/password-reset", json={"email": church.email})
    token = token_in(read_outbox(outbox, "password_reset", to=church.email)[0])
    conn = await pg.connect(pg_admin.with_db(
        f"{settings.db_prefix}_t_{church.tenant_id.replace('-', '')}"))
    try:
        await conn.execute("UPDATE password_reset_tokens SET expires_at = now() - interval '1s'")
    finally:
        await conn.close()
    for bad in (token, token[:-4] + "AAAA", "ywp_" + "0" * 32 + "_" + "x" * 43, "junk"):
        resp = await api_client.post("/api/v1/auth/password-reset/confirm",
                                     json={"token": bad, "new_password": "fresh start phrase"})
        await problem(resp, 400, "invalid_reset_token")
