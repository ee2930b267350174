"""`ywm tenants move`: dump/restore to another real cluster, verify, flip, drop; undo on failure."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest

from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.errors import OperationError
from ywmessaging.ops.move import MoveError, move_tenant
from ywmessaging.sqlq import registry as rq
from ywmessaging.tenants.provisioning import applied_version

if TYPE_CHECKING:
    from tests.second_cluster import TwoServers

# one second cluster and one two-server deployment per session, shared with test_servers.py
pytest_plugins = ["tests.second_cluster"]


async def _seed(target: PgTarget) -> None:
    """Members, groups and memberships written as the tenant's own role."""
    conn = await pg.connect(target)
    try:
        await conn.execute("INSERT INTO groups (name) VALUES ('Choir'), ('Youth'), ('Elders')")
        await conn.execute(
            "INSERT INTO members (first_name, phone) SELECT 'M' || i, "
            "'+1555' || lpad(i::text, 7, '0') FROM generate_series(1, 40) i")
        await conn.execute(
            "INSERT INTO group_members (group_id, member_id) SELECT g.id, m.id "
            "FROM groups g CROSS JOIN members m WHERE g.name <> 'Elders'")
    finally:
        await conn.close()


async def _snapshot(admin: PgTarget, db: str) -> tuple[int, dict[str, int], list[str]]:
    """(schema version, row count per table, member phones) of a tenant database."""
    conn = await pg.connect(admin.with_db(db))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        counts = {t["tablename"]: await conn.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"')
                  for t in tables}
        phones = [r["phone"] for r in await conn.fetch("SELECT phone FROM members ORDER BY 1")]
        return await applied_version(conn), counts, phones
    finally:
        await conn.close()


async def _exists(admin: PgTarget, db: str, role: str) -> tuple[bool, bool]:
    conn = await pg.connect(admin)
    try:
        return await pg.database_exists(conn, db), await pg.role_exists(conn, role)
    finally:
        await conn.close()


async def _tenant(two: TwoServers, pool: Any, tid: uuid.UUID) -> Any:
    return await rq(two.settings.sql_dir).get_tenant(pool, tid)


async def test_move_keeps_every_row_and_version_and_drops_source(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget
) -> None:
    two = two_servers
    t = await two.provision_on(two_pool, two.primary_id, "Moving Church")
    await _seed(await two.role_target(two_pool, t.id))
    before = await _snapshot(pg_admin, t.db_name)
    assert before[1]["members"] == 40 and before[1]["group_members"] == 80
    row_version = (await _tenant(two, two_pool, t.id))["row_version"]
    notes: list[str] = []
    listener = await pg.connect(PgTarget.parse(two.settings.database_url or ""))
    await listener.add_listener("ywm_tenant_changed", lambda *a: notes.append(a[3]))
    lines: list[str] = []
    try:
        result = await move_tenant(two_pool, two.settings, two.box, t.id, "second",
                                   progress=lines.append)
        await asyncio.sleep(0.2)  # let the last NOTIFY arrive
    finally:
        await listener.close()
    assert [ln.split(":")[0] for ln in lines] == [
        f"move {i}/7 {s}" for i, s in enumerate(
            ("check", "suspend", "drain", "copy", "verify", "flip", "cleanup"), 1)]
    assert (result.source, result.target, result.leftovers) == ("primary", "second", [])
    assert result.rows == sum(before[1].values()) and result.schema_version == before[0]
    after = await _tenant(two, two_pool, t.id)
    assert (after["server_id"], after["status"], after["status_reason"]) == (
        two.second_id, "active", None)
    assert after["row_version"] == row_version + 2  # suspended, then flipped
    assert notes.count(str(t.id)) == 2  # every process hears both changes
    assert await _snapshot(two.second.target, t.db_name) == before
    assert await _exists(pg_admin, t.db_name, t.db_role) == (False, False)
    target = await two.role_target(two_pool, t.id)
    assert target.port == two.second.port
    conn = await pg.connect(target)
    try:
        await conn.execute("INSERT INTO groups (name) VALUES ('After The Move')")
        assert await conn.fetchval("SELECT count(*) FROM members") == 40
    finally:
        await conn.close()


async def _can_install(admin: PgTarget, extension: str) -> bool:
    conn = await pg.connect(admin)
    try:
        return bool(await conn.fetchval(
            "SELECT 1 FROM pg_available_extensions WHERE name = $1", extension))
    finally:
        await conn.close()


async def test_move_back_with_the_cli_ends_open_sessions(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget
) -> None:
    two = two_servers
    t = await two.provision_on(two_pool, two.second_id, "Round Trip Church")
    await _seed(await two.role_target(two_pool, t.id))
    before = await _snapshot(two.second.target, t.db_name)
    if not await _can_install(pg_admin, "pg_trgm"):
        # the embedded test server (no contrib): the move is refused before anything changes
        out = two.ywm("tenants", "move", str(t.id), "--to", str(two.primary_id))
        assert out.returncode == 1 and "pg_trgm" in out.stderr, out.stderr
        assert await _snapshot(two.second.target, t.db_name) == before
        return
    lingering = await pg.connect(await two.role_target(two_pool, t.id))
    try:
        out = two.ywm("tenants", "move", str(t.id), "--to", str(two.primary_id),
                      "--grace", "0.3")
        assert out.returncode == 0, out.stderr
        assert "move 3/7 drain" in out.stdout and "1 session(s) terminated" in out.stdout
        assert f"moved tenant {t.id} from second to primary" in out.stdout
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
            await lingering.fetchval("SELECT 1")
    finally:
        await lingering.close(timeout=2)
    assert await _snapshot(pg_admin, t.db_name) == before
    assert await _exists(two.second.target, t.db_name, t.db_role) == (False, False)
    conn = await pg.connect(await two.role_target(two_pool, t.id))
    await conn.close()


async def test_failure_before_the_flip_undoes_everything(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget
) -> None:
    two = two_servers
    t = await two.provision_on(two_pool, two.primary_id, "Unlucky Church")
    await _seed(await two.role_target(two_pool, t.id))
    before = await _snapshot(pg_admin, t.db_name)
    for step in ("drain", "copy", "verify", "flip"):

        async def fail_at(current: str, step: str = step) -> None:
            if current == step:
                # from `verify` on the copy exists on `second`: the undo must remove it
                made = step in ("verify", "flip")
                assert await _exists(two.second.target, t.db_name, t.db_role) == (made, made)
                raise RuntimeError(f"injected at {current}")

        with pytest.raises(MoveError, match=f"failed at step {step}: injected") as info:
            await move_tenant(two_pool, two.settings, two.box, t.id, "second", fault=fail_at)
        assert "\n" not in str(info.value) and "active on primary again" in str(info.value)
        row = await _tenant(two, two_pool, t.id)
        assert (row["server_id"], row["status"], row["status_reason"]) == (
            two.primary_id, "active", None)
        assert await _exists(two.second.target, t.db_name, t.db_role) == (False, False)
        assert await _snapshot(pg_admin, t.db_name) == before
        conn = await pg.connect(await two.role_target(two_pool, t.id))  # CONNECT given back
        await conn.close()


async def test_stopped_server_fails_fast_and_changes_nothing(
    two_servers: TwoServers, two_pool: Any, pg_admin: PgTarget
) -> None:
    two = two_servers
    on_a = await two.provision_on(two_pool, two.primary_id, "Stays On A")
    on_b = await two.provision_on(two_pool, two.second_id, "Stays On B")
    versions = {t.id: (await _tenant(two, two_pool, t.id))["row_version"] for t in (on_a, on_b)}
    two.second.stop()
    try:
        to_b = two.ywm("tenants", "move", str(on_a.id), "--to", "second")
        assert to_b.returncode == 1
        assert to_b.stderr.startswith("ywm: cannot reach target server second")
        assert to_b.stderr.count("\n") == 1, to_b.stderr
        with pytest.raises(MoveError, match="cannot reach source server second"):
            await move_tenant(two_pool, two.settings, two.box, on_b.id, "primary")
    finally:
        two.second.start()
    for t, sid in ((on_a, two.primary_id), (on_b, two.second_id)):
        row = await _tenant(two, two_pool, t.id)
        assert (row["server_id"], row["status"], row["row_version"]) == (
            sid, "active", versions[t.id])
    assert await _exists(two.second.target, on_a.db_name, on_a.db_role) == (False, False)
    assert await _exists(pg_admin, on_b.db_name, on_b.db_role) == (False, False)
    for t in (on_a, on_b):
        conn = await pg.connect(await two.role_target(two_pool, t.id))
        await conn.close()


async def test_refusals_change_nothing(two_servers: TwoServers, two_pool: Any) -> None:
    two = two_servers
    q = rq(two.settings.sql_dir)
    t = await two.provision_on(two_pool, two.primary_id, "Going Nowhere")
    version = (await _tenant(two, two_pool, t.id))["row_version"]

    async def refused(to: str, match: str) -> None:
        with pytest.raises(OperationError, match=match):
            await move_tenant(two_pool, two.settings, two.box, t.id, to)

    await refused("primary", "already on server primary")
    await refused("nowhere", "no database server")
    await q.set_server_state(two_pool, two.second_id, "draining")
    try:
        await refused("second", "server second is draining")
    finally:
        await q.set_server_state(two_pool, two.second_id, "active")
    assert (await _tenant(two, two_pool, t.id))["row_version"] == version
    await q.set_tenant_status(two_pool, t.id, "suspended", "billing")
    await refused("second", "is suspended \\(billing\\): only an active tenant")
    with pytest.raises(MoveError, match="no tenant"):
        await move_tenant(two_pool, two.settings, two.box, uuid.uuid4(), "second")
    out = two.ywm("tenants", "move", "not-a-uuid", "--to", "second")
    assert out.returncode == 2 and out.stderr.startswith("ywm: not a tenant id")
