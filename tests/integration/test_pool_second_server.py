"""The pool supervisor over a registry with two real database servers: a server stopped with
`pg_ctl stop`, and a tenant moved between the servers under a running supervisor."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from ywmessaging.db.dsn import PgTarget
from ywmessaging.errors import TenantSuspended, TenantUnavailable
from ywmessaging.ops.move import move_tenant
from ywmessaging.tenants.runtime import SupervisorRuntime, open_supervisor

if TYPE_CHECKING:
    from tests.second_cluster import TwoServers

# one second cluster and one two-server deployment per session, shared with test_move.py
pytest_plugins = ["tests.second_cluster"]


@pytest.fixture
async def runtime(two_servers: TwoServers, two_pool: Any) -> AsyncIterator[SupervisorRuntime]:
    """A supervisor over the two-server registry (small pools, quick heartbeats)."""
    s = two_servers.settings.with_(
        tenant_pool_cap=10, tenant_pool_max=2, lease_timeout=1.0, tenant_connect_timeout=1.0,
        heartbeat_interval=0.5, registry_cache_ttl=60.0, health_interval=60.0)
    rt = await open_supervisor(s, two_servers.box, two_pool)
    try:
        deadline = time.monotonic() + 5
        while not (rt.listener is not None and rt.listener.connected):
            assert time.monotonic() < deadline, "listener did not connect"
            await asyncio.sleep(0.02)
        yield rt
    finally:
        await rt.close()


async def served_by(rt: SupervisorRuntime, tenant_id: uuid.UUID) -> int:
    """The port of the server that answered a query for the tenant."""
    async with rt.supervisor.lease(tenant_id) as conn:
        return int(await conn.fetchval("SELECT current_setting('port')"))


async def fast_unavailable(rt: SupervisorRuntime, tenant_id: uuid.UUID) -> None:
    t0 = time.monotonic()
    with pytest.raises(TenantUnavailable) as err:
        await served_by(rt, tenant_id)
    assert time.monotonic() - t0 < 1.0
    assert err.value.code == "tenant_unavailable" and int(err.value.headers["Retry-After"]) >= 1


async def eventually_served(rt: SupervisorRuntime, tenant_id: uuid.UUID, port: int,
                            within: float) -> None:
    """Poll (as clients retrying would) until the tenant is served from `port`."""
    deadline = time.monotonic() + within
    while True:
        try:
            assert await served_by(rt, tenant_id) == port
            return
        except (TenantUnavailable, TenantSuspended):
            assert time.monotonic() < deadline, "not served again in time"
            await asyncio.sleep(0.1)


async def test_stopped_server_fails_only_its_tenants_fast_and_recovers(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget,
    runtime: SupervisorRuntime,
) -> None:
    two = two_servers
    up = await two.provision_on(two_pool, two.primary_id, "Stays Up")
    down = [await two.provision_on(two_pool, two.second_id, f"Goes Down {i}") for i in range(3)]
    for t in down:
        assert await served_by(runtime, t.id) == two.second.port  # warm pools on it
    assert await served_by(runtime, up.id) == pg_admin.port
    two.second.stop()
    try:
        for _ in range(3):
            for t in down:
                await fast_unavailable(runtime, t.id)
            assert await served_by(runtime, up.id) == pg_admin.port  # the other server: fine
        sup = runtime.supervisor
        assert all(sup.actor(t.id) is None for t in down)  # closed, not left broken
        assert sup.actor(up.id) is not None
    finally:
        two.second.start()
    for t in down:  # no operator action: the breakers' trials find the server back
        await eventually_served(runtime, t.id, two.second.port, within=20)
    assert await served_by(runtime, up.id) == pg_admin.port


async def test_moved_tenant_is_served_from_the_target_by_a_running_supervisor(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget,
    runtime: SupervisorRuntime,
) -> None:
    two = two_servers
    t = await two.provision_on(two_pool, two.primary_id, "Moves Under Load")
    sup = runtime.supervisor
    assert await served_by(runtime, t.id) == pg_admin.port
    actor = sup.actor(t.id)
    assert actor is not None and actor.info.server_id == two.primary_id  # warm on the source
    changed = sup.metrics.registry.get_sample_value("ywm_tenant_evictions_total",
                                                    {"reason": "tenant_changed"})
    result = await move_tenant(two_pool, two.settings, two.box, t.id, "second", grace=0.5)
    assert (result.source, result.target) == ("primary", "second")
    # NOTIFY → evict (tenant_changed) → the next lease reopens the pool on the target
    await eventually_served(runtime, t.id, two.second.port, within=5)
    actor = sup.actor(t.id)
    assert actor is not None and actor.info.server_id == two.second_id
    assert sup.metrics.registry.get_sample_value(
        "ywm_tenant_evictions_total", {"reason": "tenant_changed"}) == (changed or 0) + 1
