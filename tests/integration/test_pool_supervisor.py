"""The pool supervisor against real tenant databases: budget under load, gating, faults."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ywmessaging import keys
from ywmessaging.api.responses import json_response
from ywmessaging.app import create_app
from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget, quote_ident
from ywmessaging.errors import (
    TenantCapacity,
    TenantNotFound,
    TenantSchemaOutdated,
    TenantSuspended,
    TenantUnavailable,
)
from ywmessaging.sqlq import registry as rq
from ywmessaging.tenants.breaker import BreakerState
from ywmessaging.tenants.keys import SUPERVISOR, TENANT_ID
from ywmessaging.tenants.middleware import tenant_conn
from ywmessaging.tenants.provisioning import Provisioned, Provisioner
from ywmessaging.tenants.runtime import SupervisorRuntime, open_supervisor
from ywmessaging.tenants.wiring import setup_supervisor

BUDGET = 16      # the test server's conn_budget while these tests run
POOL_MAX = 2
CAP = 10


@pytest.fixture(scope="module")
async def registry_pool(settings: Settings) -> AsyncIterator[Any]:
    assert settings.database_url
    pool = await pg.create_pool(PgTarget.parse(settings.database_url), max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def provisioner(registry_pool: Any, settings: Settings,
                      box: SecretBox) -> AsyncIterator[Provisioner]:
    prov = Provisioner(registry_pool, settings, box)
    yield prov
    await prov.close()


@pytest.fixture(scope="module")
async def tenants(provisioner: Provisioner) -> list[Provisioned]:
    """Sixty churches, provisioned ten at a time."""
    made: list[Provisioned] = []
    for batch in range(6):
        made += await asyncio.gather(
            *(provisioner.provision(f"Load Church {batch}-{i}") for i in range(10)))
    return made


@pytest.fixture(scope="module")
async def budget(registry_pool: Any) -> AsyncIterator[int]:
    """Every server's conn_budget set to BUDGET for this module, restored afterwards."""
    old = await registry_pool.fetch("SELECT id, conn_budget FROM db_servers")
    await registry_pool.execute("UPDATE db_servers SET conn_budget = $1", BUDGET)
    yield BUDGET
    for row in old:
        await registry_pool.execute("UPDATE db_servers SET conn_budget = $2 WHERE id = $1",
                                    row["id"], row["conn_budget"])


def sup_settings(settings: Settings, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(
        tenant_pool_cap=CAP, tenant_pool_max=POOL_MAX, lease_timeout=1.0,
        tenant_connect_timeout=1.0, heartbeat_interval=0.5, registry_cache_ttl=60.0,
        health_interval=60.0,
    )
    base.update(kw)
    return settings.with_(**base)


@pytest.fixture
async def runtime(settings: Settings, box: SecretBox, registry_pool: Any,
                  budget: int) -> AsyncIterator[SupervisorRuntime]:
    rt = await open_supervisor(sup_settings(settings), box, registry_pool)
    try:
        await wait_for(lambda: bool(rt.listener and rt.listener.connected), 5)
        yield rt
    finally:
        await rt.close()


async def wait_for(cond: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def tenant_connections(conn: Any, settings: Settings) -> int:
    like = settings.db_prefix.replace("_", r"\_") + r"\_t\_%"
    return int(await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname LIKE $1", like))


async def query(rt: SupervisorRuntime, tid: uuid.UUID, hold: float = 0.0) -> str:
    async with rt.supervisor.lease(tid) as conn:
        name = str(await conn.fetchval("SELECT church_name FROM settings"))
        if hold:
            await asyncio.sleep(hold)  # a request doing more work on its connection
        return name


async def test_budget_holds_under_concurrent_load(
    runtime: SupervisorRuntime, tenants: list[Provisioned], settings: Settings,
    pg_admin: PgTarget,
) -> None:
    sup = runtime.supervisor
    server = tenants[0].server_id
    assert sup.shares.share(server) == BUDGET
    sampler_conn = await pg.connect(pg_admin)
    seen: list[int] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            seen.append(await tenant_connections(sampler_conn, settings))
            assert sup.open_count() <= CAP and sup.used(server) <= BUDGET
            await asyncio.sleep(0.003)

    sampler = asyncio.create_task(sample())
    gate = asyncio.Semaphore(50)
    rng = random.Random(7)
    order = [rng.choice(tenants) for _ in range(600)]
    outcomes: dict[str, int] = {"ok": 0, "capacity": 0}

    async def one(t: Provisioned) -> None:
        async with gate:
            try:
                assert await query(runtime, t.id, hold=0.005) == t.name
                outcomes["ok"] += 1
            except TenantCapacity as exc:
                assert exc.headers["Retry-After"] == "1"
                outcomes["capacity"] += 1

    try:
        await asyncio.gather(*(one(t) for t in order))
    finally:
        stop.set()
        await sampler
    assert outcomes["ok"] + outcomes["capacity"] == 600
    # 50 requests in flight over 60 tenants and room for 8 pools: most cold tenants are
    # refused at once by design; the warm ones must still be served.
    assert outcomes["ok"] >= 60, outcomes
    assert 0 < max(seen) <= BUDGET, max(seen)
    print(f"outcomes={outcomes} max_connections_seen={max(seen)} samples={len(seen)}")
    assert sup.metrics.registry.get_sample_value("ywm_tenant_evictions_total",
                                                 {"reason": "lru"}) > 0
    await runtime.close()
    try:
        assert await tenant_connections(sampler_conn, settings) == 0
    finally:
        await sampler_conn.close()


async def test_status_gating_follows_the_registry_at_once(
    runtime: SupervisorRuntime, tenants: list[Provisioned], settings: Settings,
    registry_conn: Any,
) -> None:
    q = rq(settings.sql_dir)
    t = tenants[0]
    assert await query(runtime, t.id) == t.name
    await q.set_tenant_status(registry_conn, t.id, "suspended", "test")
    try:
        t0 = time.monotonic()
        await wait_for(lambda: runtime.supervisor.actor(t.id) is None, 2)  # NOTIFY, not TTL
        with pytest.raises(TenantSuspended):
            await query(runtime, t.id)
        assert time.monotonic() - t0 < 2
    finally:
        await q.set_tenant_status(registry_conn, t.id, "active", None)
    for _ in range(100):  # the reactivation is seen as soon as its notification arrives
        try:
            assert await query(runtime, t.id) == t.name
            break
        except TenantSuspended:
            await asyncio.sleep(0.02)
    else:
        pytest.fail("reactivated tenant still refused")
    need = migrations.code_version(settings.sql_dir, "tenant")
    await q.set_tenant_schema_version(registry_conn, t.id, need - 1)
    try:
        await asyncio.sleep(0.2)
        with pytest.raises(TenantSchemaOutdated):
            await query(runtime, t.id)
    finally:
        await q.set_tenant_schema_version(registry_conn, t.id, need)
    with pytest.raises(TenantNotFound):
        await query(runtime, uuid.uuid4())


async def test_listener_reconnects_and_invalidation_keeps_working(
    runtime: SupervisorRuntime, tenants: list[Provisioned], settings: Settings,
    registry_conn: Any, pg_admin: PgTarget,
) -> None:
    listener = runtime.listener
    assert listener is not None and listener.connected
    before = listener.reconnects
    admin = await pg.connect(pg_admin)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND query LIKE 'LISTEN%'", f"{settings.db_prefix}_registry")
    finally:
        await admin.close()
    assert killed == 1
    await wait_for(lambda: listener.reconnects > before and listener.connected, 5)
    t = tenants[3]
    assert await query(runtime, t.id) == t.name
    q = rq(settings.sql_dir)
    await q.set_tenant_status(registry_conn, t.id, "suspended", "test")
    try:
        await wait_for(lambda: runtime.supervisor.actor(t.id) is None, 2)
        with pytest.raises(TenantSuspended):
            await query(runtime, t.id)
    finally:
        await q.set_tenant_status(registry_conn, t.id, "active", None)


async def expect_fast_unavailable(rt: SupervisorRuntime, tid: uuid.UUID) -> None:
    t0 = time.monotonic()
    with pytest.raises(TenantUnavailable) as err:
        await query(rt, tid)
    assert time.monotonic() - t0 < 1.0
    assert int(err.value.headers["Retry-After"]) >= 1


async def test_dropped_database_fails_fast_and_alone(
    runtime: SupervisorRuntime, provisioner: Provisioner, pg_admin: PgTarget,
) -> None:
    victim = await provisioner.provision("Dropped Church")
    neighbour = await provisioner.provision("Neighbour Church")
    for t in (victim, neighbour):
        assert await query(runtime, t.id) == t.name
    admin = await pg.connect(pg_admin)
    try:
        await pg.drop_database(admin, victim.db_name)
    finally:
        await admin.close()
    for _ in range(3):
        await expect_fast_unavailable(runtime, victim.id)
    sup = runtime.supervisor
    assert sup.breakers.tenants[victim.id].state is BreakerState.OPEN
    await wait_for(lambda: sup.actor(victim.id) is None, 2)
    assert await query(runtime, neighbour.id) == neighbour.name


async def test_closed_database_recovers_when_the_breaker_half_opens(
    runtime: SupervisorRuntime, provisioner: Provisioner, pg_admin: PgTarget,
) -> None:
    t = await provisioner.provision("Closed Church")
    assert await query(runtime, t.id) == t.name
    admin = await pg.connect(pg_admin)
    db = quote_ident(t.db_name)
    try:
        await admin.execute(f"ALTER DATABASE {db} ALLOW_CONNECTIONS false")
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1", t.db_name)
        for _ in range(3):
            await expect_fast_unavailable(runtime, t.id)
        sup = runtime.supervisor
        assert sup.breakers.tenants[t.id].state is BreakerState.OPEN
        await wait_for(lambda: sup.actor(t.id) is None, 2)
    finally:
        await admin.execute(f"ALTER DATABASE {db} ALLOW_CONNECTIONS true")
        await admin.close()
    deadline = time.monotonic() + 8
    while True:  # no operator action: the next attempt after the cool-down succeeds
        try:
            assert await query(runtime, t.id) == t.name
            break
        except TenantUnavailable:
            assert time.monotonic() < deadline, "tenant did not recover"
            await asyncio.sleep(0.1)
    assert runtime.supervisor.breakers.tenants.get(t.id) is None


async def test_two_processes_share_a_server_budget(
    settings: Settings, box: SecretBox, registry_pool: Any, budget: int,
    tenants: list[Provisioned], registry_conn: Any,
) -> None:
    s = sup_settings(settings)
    first = await open_supervisor(s, box, registry_pool, kind="api")
    second: SupervisorRuntime | None = None
    try:
        server = tenants[0].server_id
        for t in tenants[:8]:  # 8 idle pools of 2 = the whole budget
            await query(first, t.id)
        assert first.supervisor.used(server) == BUDGET
        second = await open_supervisor(s, box, registry_pool, kind="worker")
        assert second.supervisor.shares.share(server) == BUDGET // 2
        await wait_for(lambda: first.supervisor.shares.share(server) == BUDGET // 2, 3)
        await wait_for(lambda: first.supervisor.used(server) <= BUDGET // 2, 3)
        rows = await registry_conn.fetch("SELECT kind, claims FROM process_heartbeats")
        assert sorted(r["kind"] for r in rows) == ["api", "worker"]
    finally:
        if second is not None:
            await second.close()
        await first.close()
    assert await registry_conn.fetchval("SELECT count(*) FROM process_heartbeats") == 0


# --- the request path through the real application ------------------------------------------

async def church_handler(request: web.Request) -> web.Response:
    conn = tenant_conn(request)
    return json_response({"name": await conn.fetchval("SELECT church_name FROM settings")})


def tenant_header_plugin(app: web.Application, settings: Settings) -> None:
    """TEST ONLY: take the tenant from an `X-Test-Tenant` header (authentication will set it
    from the JWT), and a route that reads the church's database through its lease."""

    @web.middleware
    async def from_header(request: web.Request, handler: Any) -> web.StreamResponse:
        raw = request.headers.get("X-Test-Tenant")
        if raw:
            request[TENANT_ID] = uuid.UUID(raw)
        return await handler(request)  # type: ignore[no-any-return]

    app[keys.API_V1].middlewares.append(from_header)
    app[keys.API_V1].router.add_get("/test/church", church_handler)


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = create_app(settings, plugins=(tenant_header_plugin, setup_supervisor))
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_requests_lease_per_request_and_ops_endpoint(
    settings: Settings, tenants: list[Provisioned], registry_conn: Any, budget: int,
) -> None:
    t, suspended = tenants[1], tenants[2]
    s = sup_settings(settings, operator_token="op-token-for-tests")
    await rq(settings.sql_dir).set_tenant_status(registry_conn, suspended.id, "suspended", "t")
    try:
        async with serve(s) as client:
            r = await client.get("/api/v1/test/church", headers={"X-Test-Tenant": str(t.id)})
            assert r.status == 200 and (await r.json())["name"] == t.name
            r = await client.get("/api/v1/test/church",
                                 headers={"X-Test-Tenant": str(suspended.id)})
            assert (r.status, (await r.json())["code"]) == (423, "tenant_suspended")
            r = await client.get("/api/v1/test/church",
                                 headers={"X-Test-Tenant": str(uuid.uuid4())})
            assert (r.status, (await r.json())["code"]) == (404, "tenant_not_found")
            sup = client.app[SUPERVISOR].supervisor
            actor = sup.actor(t.id)
            assert actor is not None and actor.leases == 0  # released after the response
            url = f"/ops/tenants/{t.id}/pool"
            r = await client.get(url, headers={"Authorization": "Bearer wrong"})
            assert (r.status, (await r.json())["code"]) == (401, "unauthorized")
            r = await client.get(url, headers={"Authorization": "Bearer op-token-for-tests"})
            body = await r.json()
            assert r.status == 200 and body["state"] == "ready"
            assert body["counters"]["leases"] == 1 and body["pool"]["max_size"] == POOL_MAX
            assert body["server"]["share"] == BUDGET and body["listener_connected"] is True
            r = await client.get("/metrics")
            text = await r.text()
            assert "ywm_tenant_pools_open 1.0" in text
            assert 'ywm_tenant_lease_errors_total{code="tenant_suspended"} 1.0' in text
    finally:
        await rq(settings.sql_dir).set_tenant_status(registry_conn, suspended.id, "active", None)
    async with serve(sup_settings(settings, operator_token=None)) as client:
        r = await client.get(f"/ops/tenants/{t.id}/pool",
                             headers={"Authorization": "Bearer op-token-for-tests"})
        assert r.status == 404
