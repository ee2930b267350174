"""Concurrent requests against one secret: refresh tokens, login and step-up throttling, reset
tokens and invitations. Each test fires its requests at once with asyncio.gather over HTTP."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import (
    PASSWORD,
    Client,
    bearer,
    church_db,
    count_passwords,
    problem,
    read_outbox,
    register,
    token_in,
)
from ywmessaging.auth.state import AUTH
from ywmessaging.auth.throttle import WAIT_S, Rule, Throttle, email_key, ip_key
from ywmessaging.config import Settings
from ywmessaging.db.dsn import PgTarget
from ywmessaging.sqlq import registry as rq


async def _failures(registry_conn: Any, email: str) -> int:
    got = await registry_conn.fetchval("SELECT failures FROM login_throttle WHERE key = $1",
                                       f"email:{email}")
    return int(got or 0)


async def test_concurrent_refreshes_of_one_token_continue_one_chain(
    api_client: Client, pg_admin: PgTarget, settings: Settings,
) -> None:
    church = await register(api_client)
    resps = await asyncio.gather(*(api_client.post(
        "/api/v1/auth/refresh", json={"refresh_token": church.refresh}) for _ in range(6)))
    statuses = sorted(r.status for r in resps)
    assert statuses == [200, 409, 409, 409, 409, 409], statuses
    winner = next(r for r in resps if r.status == 200)
    for r in resps:
        if r is not winner:
            await problem(r, 409, "refresh_token_superseded")
    new = (await winner.json())["refresh_token"]
    async with church_db(pg_admin, settings, church.tenant_id) as conn:
        # The family holds the first token and exactly one successor: nothing forked.
        assert await conn.fetchval("SELECT count(*) FROM refresh_tokens") == 2
        await conn.execute("UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute'"
                           " WHERE rotated_at IS NOT NULL")
    # Past the grace, the first token again is theft: the one chain there is ends with it.
    await problem(await api_client.post("/api/v1/auth/refresh",
                                        json={"refresh_token": church.refresh}),
                  401, "refresh_token_reused")
    await problem(await api_client.post("/api/v1/auth/refresh", json={"refresh_token": new}),
                  401, "invalid_refresh_token")


async def test_a_burst_of_wrong_passwords_cannot_outrun_the_lock(
    api_client: Client, registry_conn: Any,
) -> None:
    church = await register(api_client)
    svc = api_client.app[AUTH]
    # Lock at the 5th failure, so the first attempt after the burst meets a lock for sure.
    svc.throttle = Throttle(svc.settings, email_rule=Rule(free=5, lock_after=5, lock_s=900))
    counting = count_passwords(api_client)
    resps = await asyncio.gather(*(api_client.post("/api/v1/auth/login", json={
        "email": church.email, "password": f"wrong guess {i:04d}"}) for i in range(30)))
    statuses = Counter(r.status for r in resps)
    assert statuses == {401: 4, 429: 26}, statuses
    assert counting.verifications == 5  # 4 plain failures and the one that locked
    assert await _failures(registry_conn, church.email) == 5
    right = await api_client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
    await problem(right, 429, "login_locked")
    assert counting.verifications == 5


async def _in_flight(registry_conn: Any, key: str, *, live: bool = True) -> int:
    return int(await registry_conn.fetchval(
        "SELECT count(*) FROM login_attempts_in_flight WHERE key = $1"
        " AND (NOT $2 OR expires_at > now())", key, live))


def _login(client: Client, email: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


@pytest.mark.parametrize("n", [8, 12])
async def test_concurrent_right_password_logins_of_one_admin_all_succeed(
    api_client: Client, registry_conn: Any, n: int,
) -> None:
    church = await register(api_client)
    counting = count_passwords(api_client)
    resps = await asyncio.gather(*(_login(api_client, church.email, PASSWORD)
                                   for _ in range(n)))
    codes = Counter([(r.status, (await r.json()).get("code")) for r in resps])
    assert codes == {(200, None): n}, codes
    assert counting.verifications == n
    # Nothing is left counted or in flight once every attempt is decided.
    assert await _failures(registry_conn, church.email) == 0
    assert await _in_flight(registry_conn, email_key(church.email), live=False) == 0
    assert await registry_conn.fetchval(
        "SELECT coalesce(sum(failures), 0) FROM login_throttle WHERE key LIKE 'ip:%'") == 0


async def test_right_passwords_among_a_few_wrong_ones_all_succeed(
    api_client: Client,
) -> None:
    church = await register(api_client)
    passwords = [PASSWORD] * 8 + [f"wrong guess {i:04d}" for i in range(4)]
    resps = await asyncio.gather(*(_login(api_client, church.email, pw) for pw in passwords))
    got = [r.status for r in resps]
    assert got == [200] * 8 + [401] * 4, got


@pytest.mark.parametrize("n", [12, 30])
async def test_a_burst_of_wrong_passwords_gets_only_the_free_checks(
    api_client: Client, registry_conn: Any, n: int,
) -> None:
    church = await register(api_client)
    svc = api_client.app[AUTH]
    # The default email rule, with a delay too long to pass during the test.
    svc.throttle = Throttle(svc.settings, email_rule=Rule(free=5, lock_after=8, lock_s=900,
                                                          base_delay_s=60.0))
    counting = count_passwords(api_client)
    resps = await asyncio.gather(*(_login(api_client, church.email, f"wrong guess {i:04d}")
                                   for i in range(n)))
    codes = Counter([(r.status, (await r.json())["code"]) for r in resps])
    assert codes == {(401, "invalid_credentials"): 5, (429, "login_throttled"): n - 5}, codes
    assert counting.verifications == 5
    assert await _failures(registry_conn, church.email) == 5
    assert await _in_flight(registry_conn, email_key(church.email), live=False) == 0


async def test_attempts_in_flight_of_a_dead_process_stop_counting_as_such(
    api_client: Client, registry_conn: Any, settings: Settings,
) -> None:
    church = await register(api_client)
    svc = api_client.app[AUTH]
    svc.throttle = Throttle(svc.settings, email_rule=Rule(free=5, lock_after=8, lock_s=900,
                                                          base_delay_s=60.0))
    counting = count_passwords(api_client)
    key = email_key(church.email)
    # Five reservations that are never decided: the process that made them is gone.
    for _ in range(5):
        await svc.throttle.reserve(registry_conn, [key, ip_key("192.0.2.9")])
    assert await _in_flight(registry_conn, key) == 5
    t0 = time.perf_counter()
    await problem(await _login(api_client, church.email, PASSWORD), 429, "login_throttled")
    waited = time.perf_counter() - t0
    assert waited >= WAIT_S * 0.9, waited  # it waited for them, bounded
    # Their marks expire: an attempt no longer waits for them (they count as failures) ...
    await registry_conn.execute(
        "UPDATE login_attempts_in_flight SET expires_at = now() - interval '2 minutes'"
        " WHERE key = ANY($1::text[])", [key, ip_key("192.0.2.9")])
    t0 = time.perf_counter()
    await problem(await _login(api_client, church.email, PASSWORD), 429, "login_throttled")
    assert time.perf_counter() - t0 < WAIT_S / 2
    assert counting.verifications == 0
    assert await _failures(registry_conn, church.email) == 5
    # ... the delay they earned passes like any other, and the sweep removes the marks.
    await registry_conn.execute("UPDATE login_throttle SET last_failure_at = now() -"
                                " interval '2 minutes' WHERE key = $1", key)
    assert (await _login(api_client, church.email, PASSWORD)).status == 200
    assert await rq(settings.sql_dir).sweep_login_attempts_in_flight(registry_conn, 60.0) >= 10
    assert await _in_flight(registry_conn, key, live=False) == 0


async def test_a_burst_of_wrong_current_passwords_is_throttled_too(
    api_client: Client, registry_conn: Any,
) -> None:
    church = await register(api_client)
    svc = api_client.app[AUTH]
    svc.throttle = Throttle(svc.settings, email_rule=Rule(free=5, lock_after=5, lock_s=900))
    counting = count_passwords(api_client)
    resps = await asyncio.gather(*(api_client.post(
        "/api/v1/auth/password", headers=church.auth,
        json={"current_password": f"wrong guess {i:04d}",
              "new_password": "a brand new passphrase"}) for i in range(12)))
    codes = Counter([(r.status, (await r.json())["code"]) for r in resps])
    assert codes == {(403, "invalid_current_password"): 4, (429, "login_locked"): 8}, codes
    assert counting.verifications == 5
    assert await _failures(registry_conn, church.email) == 5
    right = await api_client.post("/api/v1/auth/password", headers=church.auth, json={
        "current_password": PASSWORD, "new_password": "a brand new passphrase"})
    await problem(right, 429, "login_locked")


async def test_one_reset_token_or_invitation_used_at_once_works_once(
    api_client: Client, outbox: Path,
) -> None:
    church = await register(api_client)
    await api_client.post("/api/v1/auth/password-reset", json={"email": church.email})
    token = token_in(read_outbox(outbox, "password_reset", to=church.email)[0])
    resps = await asyncio.gather(*(api_client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": f"new passphrase {i}"}) for i in range(4)))
    assert sorted(r.status for r in resps) == [204, 400, 400, 400]
    winner = next(i for i, r in enumerate(resps) if r.status == 204)
    login = await api_client.post("/api/v1/auth/login", json={
        "email": church.email, "password": f"new passphrase {winner}"})
    owner = bearer((await login.json())["access_token"])
    addr = f"helper-{secrets.token_hex(4)}@example.org"
    invite = await api_client.post("/api/v1/admins", headers=owner, json={
        "email": addr, "first_name": "Hal", "last_name": "Helper"})
    assert invite.status == 201
    token = token_in(read_outbox(outbox, "invitation", to=addr)[0])
    resps = await asyncio.gather(*(api_client.post(
        "/api/v1/auth/invitations/accept",
        json={"token": token, "password": f"invite phrase {i}"}) for i in range(4)))
    assert sorted(r.status for r in resps) == [200, 400, 400, 400]
