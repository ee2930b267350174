"""The tenant directory (the supervisor's registry look-ups): one look-up for many waiters
that survives a cancelled one, and a known tenant trusted while its changes are heard."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.unit.supervisor_fakes import NEED, Clock
from ywmessaging.config import Settings
from ywmessaging.tenants.directory import TenantDirectory


class SlowRegistry:
    """Stands in for the registry pool: each `sup_tenant` look-up takes 50 ms."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls = 0
        self.error = error

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.error is not None:
            raise self.error
        return None


async def test_a_cancelled_lookup_does_not_cancel_the_others_waiting_for_it() -> None:
    registry = SlowRegistry()
    directory = TenantDirectory(registry, Settings().sql_dir, ttl=30.0)
    tid = uuid.uuid4()
    first = asyncio.create_task(directory.get(tid))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(directory.get(tid))
    await asyncio.sleep(0.01)
    first.cancel()  # its client went away
    assert await second is None and registry.calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await directory.get(tid) is None and registry.calls == 1  # cached
    failing = TenantDirectory(SlowRegistry(ConnectionRefusedError("down")), Settings().sql_dir,
                              ttl=30.0)
    results = await asyncio.gather(failing.get(tid), failing.get(tid), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionRefusedError, ConnectionRefusedError]


class RowRegistry:
    """Stands in for the registry pool: `sup_tenant` answers one active tenant's row."""

    def __init__(self, tenant_id: uuid.UUID) -> None:
        self.calls = 0
        self.row = {"id": tenant_id, "status": "active", "schema_version": NEED, "server_id": 1,
                    "server_name": "main", "server_state": "active",
                    "server_host": "127.0.0.1", "server_port": 5432, "db_name": "t",
                    "db_role": "t", "db_password_enc": b"x", "conn_budget": 10,
                    "row_version": 1}

    async def fetchrow(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        self.calls += 1
        return self.row if args[0] == self.row["id"] else None


async def test_a_known_tenant_is_not_looked_up_again_while_changes_are_heard() -> None:
    clock = Clock()
    tid, unknown = uuid.uuid4(), uuid.uuid4()
    registry = RowRegistry(tid)
    directory = TenantDirectory(registry, Settings().sql_dir, ttl=30.0, clock=clock)
    hearing = [True]
    directory.trusted = lambda: hearing[0]
    assert (await directory.get(tid)) is not None and await directory.get(unknown) is None
    assert registry.calls == 2
    clock.now += 3600  # far past the TTL
    assert (await directory.get(tid)) is not None
    assert registry.calls == 2  # the listener would have said if it changed
    assert await directory.get(unknown) is None
    assert registry.calls == 3  # "no such tenant" lasts the TTL only (inserts notify nothing)
    directory.invalidate(tid)  # a notification
    await directory.get(tid)
    assert registry.calls == 4
    hearing[0] = False  # listener down: the TTL applies again
    clock.now += 31
    await directory.get(tid)
    assert registry.calls == 5

