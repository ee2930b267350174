"""Connection-level failures are 503, never 500, on every route: a deployment whose registry
(and churches) live on a private cluster, whose connections are exhausted, then restarted under
load (issue #16, item 1)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from tests.conftest import TEST_SECRET
from tests.integration.auth_fixtures import PASSWORD, Church, Client, build_app, register
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.ops.bootstrap import bootstrap

if TYPE_CHECKING:
    from tests.second_cluster import SecondCluster

# what a connection-level failure may be answered with, by kind of route
REGISTRY_CODES = {"database_unavailable"}
TENANT_CODES = {"database_unavailable", "tenant_unavailable", "tenant_capacity"}


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[SecondCluster]:
    """A cluster of this module's own (max_connections 30): it is exhausted and restarted."""
    # imported here: other modules load tests.second_cluster as a pytest plugin
    from tests.second_cluster import SecondCluster, _bin_dir, _unprivileged_user, free_port

    made = SecondCluster(base=Path(tempfile.mkdtemp(prefix="ywm-faults-pg-")),
                         bindir=_bin_dir(), port=free_port(), user=_unprivileged_user())
    try:
        made.init()
        made.start()
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="module")
async def fault_settings(cluster: SecondCluster, tmp_path_factory: Any) -> Settings:
    """A deployment whose registry, template and churches are all on the private cluster."""
    prefix = f"ywmf{secrets.token_hex(3)}"
    s = Settings(database_url=cluster.target.with_db(f"{prefix}_registry").dsn(),
                 secret_key=TEST_SECRET, db_prefix=prefix, log_format="console",
                 log_level="error", data_dir=tmp_path_factory.mktemp("faults"),
                 registry_pool_max=4, tenant_connect_timeout=2.0, lease_timeout=2.0)
    await bootstrap(s)
    return s


@pytest.fixture
async def client(aiohttp_client: Any, fault_settings: Settings) -> Client:
    c: Client = await aiohttp_client(build_app(fault_settings))
    return c


@contextlib.asynccontextmanager
async def exhausted(cluster: SecondCluster) -> AsyncIterator[int]:
    """End every other session of the cluster, then hold every connection slot it has."""
    hogs = [await pg.connect(cluster.target)]
    await hogs[0].execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'")
    try:
        while True:
            try:
                hogs.append(await pg.connect(cluster.target))
            except asyncpg.TooManyConnectionsError:
                break
            assert len(hogs) < 100, "max_connections is not being enforced"
        yield len(hogs)
    finally:
        await asyncio.gather(*(h.close() for h in hogs), return_exceptions=True)


async def unavailable(resp: Any, codes: set[str]) -> str:
    """Assert a 503 problem with Retry-After and one of `codes`; its code."""
    body = await resp.json(content_type=None)
    assert resp.status == 503, (resp.url.path, resp.status, body)
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert int(resp.headers["Retry-After"]) >= 1, body
    assert body["code"] in codes, body
    return str(body["code"])


async def test_exhausted_connections_are_503_on_every_route(
        client: Client, cluster: SecondCluster) -> None:
    church = await register(client)
    resp = await client.get("/api/v1/members", headers=church.auth)
    assert resp.status == 200
    async with exhausted(cluster):
        login = await client.post("/api/v1/auth/login",
                                  json={"email": church.email, "password": PASSWORD})
        assert await unavailable(login, REGISTRY_CODES) == "database_unavailable"
        signup = await client.post("/api/v1/auth/register", json={
            "church_name": "Full House", "email": f"x-{secrets.token_hex(3)}@example.org",
            "password": PASSWORD, "first_name": "A", "last_name": "B",
            "timezone": "America/Chicago"})
        assert await unavailable(signup, REGISTRY_CODES) == "database_unavailable"
        reset = await client.post("/api/v1/auth/password-reset", json={"email": church.email})
        assert await unavailable(reset, REGISTRY_CODES) == "database_unavailable"
        confirm = await client.post("/api/v1/auth/password-reset/confirm",
                                    json={"token": "x" * 43, "new_password": PASSWORD + "!"})
        assert await unavailable(confirm, REGISTRY_CODES) == "database_unavailable"
        ready = await client.get("/readyz")
        assert await unavailable(ready, {"not_ready"}) == "not_ready"
        members = await client.get("/api/v1/members", headers=church.auth)
        await unavailable(members, TENANT_CODES)
    login = await client.post("/api/v1/auth/login",
                              json={"email": church.email, "password": PASSWORD})
    assert login.status == 200, await login.text()


async def _load(client: Client, church: Church, stop: asyncio.Event,
                seen: list[tuple[str, int, str | None, str | None]]) -> None:
    """Requests of every kind, one after another, until `stop`."""
    calls = [
        ("readyz", lambda: client.get("/readyz")),
        ("login", lambda: client.post("/api/v1/auth/login",
                                      json={"email": church.email, "password": PASSWORD})),
        ("members", lambda: client.get("/api/v1/members", headers=church.auth)),
        ("reset", lambda: client.post("/api/v1/auth/password-reset",
                                      json={"email": church.email})),
    ]
    i = 0
    while not stop.is_set():
        name, call = calls[i % len(calls)]
        i += 1
        resp = await call()
        body = await resp.json(content_type=None)
        code = body.get("code") if isinstance(body, dict) else None
        seen.append((name, resp.status, code, resp.headers.get("Retry-After")))
        await asyncio.sleep(0.01)


async def test_a_server_restart_under_load_answers_503_never_500(
        client: Client, cluster: SecondCluster) -> None:
    church = await register(client)
    stop = asyncio.Event()
    seen: list[tuple[str, int, str | None, str | None]] = []
    loaders = [asyncio.create_task(_load(client, church, stop, seen)) for _ in range(3)]
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(cluster.stop)      # pg_ctl -m fast: every session ends
        await asyncio.sleep(1.0)                   # refused while it is down
        await asyncio.to_thread(cluster.start)
        deadline = time.monotonic() + 30
        while not any(name == "login" and status == 200 for name, status, _, _
                      in seen[-12:]):              # recovered: logins work again
            assert time.monotonic() < deadline, seen[-12:]
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.gather(*loaders)
    errors = [s for s in seen if s[1] >= 500 and s[1] != 503]
    assert not errors, errors
    down = [s for s in seen if s[1] == 503]
    assert down, "the restart was never seen"
    for name, _, code, retry in down:
        assert retry is not None and int(retry) >= 1, (name, code)
        allowed = {"not_ready"} if name == "readyz" else TENANT_CODES  # login reads the church
        assert code in allowed, (name, code)
