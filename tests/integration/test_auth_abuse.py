"""Unauthenticated abuse: per-address limits, made-up tokens that must not cost a hash, a
suspended church that must not reveal its admins, expired invitations."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Client,
    church_db,
    count_passwords,
    problem,
    read_outbox,
    register,
    token_in,
)
from ywmessaging.auth.throttle import RESET_CONFIRM_LIMIT, RESET_REQUEST_LIMIT, SIGNUP_LIMIT
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget


async def test_sign_ups_per_address_are_capped(api_client: Client) -> None:
    """Counted before anything costly: weak passwords (422) spend the allowance too."""
    resps = await asyncio.gather(*(api_client.post("/api/v1/auth/register", json={
        "church_name": f"Spam Church {i}", "email": f"spam-{i}@example.org",
        "password": "short", "first_name": "S", "last_name": "P",
    }) for i in range(SIGNUP_LIMIT.per_window + 5)))
    statuses = Counter(r.status for r in resps)
    assert statuses == {422: SIGNUP_LIMIT.per_window, 429: 5}, statuses
    limited = next(r for r in resps if r.status == 429)
    await problem(limited, 429, "too_many_requests")
    assert 3500 < int(limited.headers["Retry-After"]) <= 3600


async def test_made_up_tokens_cost_no_hash_and_are_capped(api_client: Client) -> None:
    church = await register(api_client)
    counting = count_passwords(api_client)
    tid = uuid.UUID(church.tenant_id).hex
    n = RESET_CONFIRM_LIMIT.per_window
    fake = [f"{kind}_{tid}_{secrets.token_urlsafe(32)}" for kind in ("ywp", "ywi")]
    resets = await asyncio.gather(*(api_client.post("/api/v1/auth/password-reset/confirm", json={
        "token": fake[0], "new_password": "some long passphrase"}) for _ in range(n + 3)))
    invites = await asyncio.gather(*(api_client.post("/api/v1/auth/invitations/accept", json={
        "token": fake[1], "password": "some long passphrase"}) for _ in range(n + 3)))
    assert Counter(r.status for r in resets) == {400: n, 429: 3}
    assert Counter(r.status for r in invites) == {400: n, 429: 3}
    await problem(next(r for r in resets if r.status == 400), 400, "invalid_reset_token")
    await problem(next(r for r in invites if r.status == 400), 400, "invalid_invitation")
    await problem(next(r for r in invites if r.status == 429), 429, "too_many_requests")
    assert counting.hashes == 0


async def test_reset_requests_per_address_are_capped(api_client: Client) -> None:
    n = RESET_REQUEST_LIMIT.per_window
    resps = await asyncio.gather(*(api_client.post("/api/v1/auth/password-reset", json={
        "email": f"nobody-{i}@example.org"}) for i in range(n + 3)))
    assert Counter(r.status for r in resps) == {202: n, 429: 3}


async def test_suspended_church_is_named_only_to_the_right_password(
    api_client: Client, registry_conn: Any, outbox: Path,
) -> None:
    church = await register(api_client)
    coadmin = f"co-{secrets.token_hex(4)}@example.org"
    invited = await api_client.post("/api/v1/admins", headers=church.auth, json={
        "email": coadmin, "first_name": "Co", "last_name": "Admin", "role": "admin"})
    assert invited.status == 201
    accepted = await api_client.post("/api/v1/auth/invitations/accept", json={
        "token": token_in(read_outbox(outbox, "invitation", to=coadmin)[0]),
        "password": "co-admin passphrase 42"})
    assert accepted.status == 200
    await registry_conn.execute("UPDATE tenants SET status = 'suspended' WHERE id = $1",
                                uuid.UUID(church.tenant_id))
    wrong = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": "not the password"})
    unknown = await api_client.post("/api/v1/auth/login", json={
        "email": f"nobody-{secrets.token_hex(4)}@example.org", "password": "not the password"})
    a = await problem(wrong, 401, "invalid_credentials")
    b = await problem(unknown, 401, "invalid_credentials")
    a.pop("request_id", None)
    b.pop("request_id", None)
    assert a == b
    assert await registry_conn.fetchval("SELECT failures FROM login_throttle WHERE key = $1",
                                        f"email:{church.email}") == 1
    # A co-admin's right password names the suspension (nothing is open to them), and is not
    # a failure: their count stays where it was.
    await api_client.post("/api/v1/auth/login", json={"email": coadmin, "password": "wrong"})
    refused = await api_client.post("/api/v1/auth/login", json={
        "email": coadmin, "password": "co-admin passphrase 42"})
    await problem(refused, 423, "tenant_suspended")
    assert await registry_conn.fetchval("SELECT failures FROM login_throttle WHERE key = $1",
                                        f"email:{coadmin}") == 1
    # The owner signs in, to pay, export or delete; everything else answers 423.
    right = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
    assert right.status == 200, await right.text()
    owner = {"Authorization": f"Bearer {(await right.json())['access_token']}"}
    assert (await api_client.get("/api/v1/auth/me", headers=owner)).status == 200
    assert (await api_client.get("/api/v1/billing/plan", headers=owner)).status == 200
    await problem(await api_client.get("/api/v1/members", headers=owner), 423,
                  "tenant_suspended")


async def test_expired_invitation_is_refused(
    api_client: Client, outbox: Path, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    addr = f"late-{secrets.token_hex(4)}@example.org"
    invite = await api_client.post("/api/v1/admins", headers=church.auth, json={
        "email": addr, "first_name": "Lou", "last_name": "Late"})
    assert invite.status == 201
    token = token_in(read_outbox(outbox, "invitation", to=addr)[0])
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        await conn.execute("UPDATE admins SET invitation_expires_at = now() - interval '1 second'"
                           " WHERE email = $1", addr)
    counting = count_passwords(api_client)
    late = await api_client.post("/api/v1/auth/invitations/accept",
                                 json={"token": token, "password": "a late passphrase"})
    await problem(late, 400, "invalid_invitation")
    assert counting.hashes == 0
    login = await api_client.post("/api/v1/auth/login",
                                  json={"email": addr, "password": "a late passphrase"})
    await problem(login, 401, "invalid_credentials")
