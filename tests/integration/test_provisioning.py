"""Provisioning: concurrent sign-ups, role isolation, and clean rollback at every step."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.errors import ValidationFailed
from ywmessaging.tenants.naming import tenant_db_name, tenant_role_name
from ywmessaging.tenants.provisioning import Provisioner, ProvisioningError


@pytest.fixture
async def provisioner(settings: Settings, box: SecretBox) -> AsyncIterator[Provisioner]:
    assert settings.database_url
    pool = await pg.create_pool(PgTarget.parse(settings.database_url), max_size=8)
    prov = Provisioner(pool, settings, box)
    yield prov
    await prov.close()
    await pool.close()


async def _exists(pg_admin: PgTarget, db: str, role: str) -> tuple[bool, bool]:
    conn = await pg.connect(pg_admin)
    try:
        return await pg.database_exists(conn, db), await pg.role_exists(conn, role)
    finally:
        await conn.close()


async def test_twenty_concurrent_provisionings(
    provisioner: Provisioner, settings: Settings, registry_conn: Any, pg_admin: PgTarget
) -> None:
    names = [f"Grace Church {i}" for i in range(20)]
    made = await asyncio.gather(*(provisioner.provision(n) for n in names))
    ids = [t.id for t in made]
    assert len(set(ids)) == 20
    rows = await registry_conn.fetch(
        "SELECT status, schema_version FROM tenants WHERE id = ANY($1::uuid[])", ids
    )
    want = migrations.code_version(settings.sql_dir, "tenant")
    assert [(r["status"], r["schema_version"]) for r in rows] == [("active", want)] * 20
    conn = await pg.connect(pg_admin)
    try:
        dbs = await conn.fetchval(
            "SELECT count(*) FROM pg_database WHERE datname = ANY($1::text[])",
            [t.db_name for t in made],
        )
        roles = await conn.fetchval(
            "SELECT count(*) FROM pg_roles WHERE rolname = ANY($1::text[]) AND rolcanlogin",
            [t.db_role for t in made],
        )
    finally:
        await conn.close()
    assert (dbs, roles) == (20, 20)


async def test_tenant_role_reaches_only_its_own_database(
    provisioner: Provisioner, pg_admin: PgTarget, box: SecretBox, registry_conn: Any,
    settings: Settings,
) -> None:
    a = await provisioner.provision("Church A", time_zone="Europe/London")
    b = await provisioner.provision("Church B")
    sealed = await registry_conn.fetchval("SELECT db_password_enc FROM tenants WHERE id=$1", a.id)
    password = box.open(bytes(sealed), f"tenant-role:{a.id}")
    as_a = pg_admin.as_user(a.db_role, password)
    conn = await pg.connect(as_a.with_db(a.db_name))
    try:
        row = await conn.fetchrow("SELECT church_name, time_zone FROM settings")
        assert (row["church_name"], row["time_zone"]) == ("Church A", "Europe/London")
        await conn.execute("INSERT INTO groups (name) VALUES ('Choir')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM _yoyo_migration")
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pg.connect(as_a.with_db(b.db_name))
    assert settings.database_url
    registry_db = PgTarget.parse(settings.database_url).database
    template = await registry_conn.fetchval("SELECT template_db FROM db_servers LIMIT 1")
    for other in (registry_db, template):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pg.connect(as_a.with_db(other))


@pytest.mark.parametrize("step", ["placement", "role", "database", "migrate"])
async def test_failure_at_any_step_leaves_nothing(
    provisioner: Provisioner, settings: Settings, registry_conn: Any, pg_admin: PgTarget,
    step: str,
) -> None:
    tid = uuid.uuid4()

    async def fail_at(current: str) -> None:
        if current == step:
            raise RuntimeError(f"injected failure at {current}")

    with pytest.raises(ProvisioningError) as info:
        await provisioner.provision("Doomed Church", tenant_id=tid, fault=fail_at)
    assert f"step {step}" in str(info.value)
    assert await registry_conn.fetchval("SELECT count(*) FROM tenants WHERE id=$1", tid) == 0
    db_exists, role_exists = await _exists(
        pg_admin, tenant_db_name(settings, tid), tenant_role_name(settings, tid)
    )
    assert (db_exists, role_exists) == (False, False)


async def test_real_failure_when_database_name_taken(
    provisioner: Provisioner, settings: Settings, registry_conn: Any, pg_admin: PgTarget
) -> None:
    tid = uuid.uuid4()
    squatter = tenant_db_name(settings, tid)
    conn = await pg.connect(pg_admin)
    try:
        await conn.execute(f'CREATE DATABASE "{squatter}"')
    finally:
        await conn.close()
    with pytest.raises(ProvisioningError, match="step database"):
        await provisioner.provision("Squatted", tenant_id=tid)
    assert await registry_conn.fetchval("SELECT count(*) FROM tenants WHERE id=$1", tid) == 0
    db_exists, role_exists = await _exists(pg_admin, squatter, tenant_role_name(settings, tid))
    assert db_exists  # not ours: left alone
    assert not role_exists


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "bad\x00name"])
async def test_invalid_names_rejected_before_anything_is_made(
    provisioner: Provisioner, registry_conn: Any, name: str
) -> None:
    before = await registry_conn.fetchval("SELECT count(*) FROM tenants")
    with pytest.raises(ValidationFailed):
        await provisioner.provision(name)
    assert await registry_conn.fetchval("SELECT count(*) FROM tenants") == before


async def test_unknown_time_zone_rejected(provisioner: Provisioner) -> None:
    with pytest.raises(ValidationFailed):
        await provisioner.provision("Church", time_zone="Mars/Olympus")


async def test_busy_template_falls_back_to_template0(
    provisioner: Provisioner, settings: Settings, pg_admin: PgTarget, registry_conn: Any
) -> None:
    template = await registry_conn.fetchval("SELECT template_db FROM db_servers LIMIT 1")
    holder = await pg.connect(pg_admin.with_db(template))
    try:
        t = await provisioner.provision("Busy Template Church")
    finally:
        await holder.close()
    assert not t.used_template
    assert t.schema_version == migrations.code_version(settings.sql_dir, "tenant")


async def test_hooks_run_in_order_and_a_failing_hook_undoes_everything(
    provisioner: Provisioner, settings: Settings, registry_conn: Any, pg_admin: PgTarget
) -> None:
    seen: list[str] = []

    async def placed(conn: Any, tid: uuid.UUID) -> None:
        seen.append("placed")
        # inside the placement transaction: the row is visible to this connection
        assert await conn.fetchval("SELECT status FROM tenants WHERE id=$1", tid) == "provisioning"

    async def created(conn: Any, tid: uuid.UUID) -> None:
        seen.append("created")
        await conn.execute("INSERT INTO groups (name) VALUES ('Owners')")

    t = await provisioner.provision("Hooked", on_placed=placed, on_created=created)
    assert seen == ["placed", "created"]
    conn = await pg.connect(pg_admin.with_db(t.db_name))
    try:
        assert await conn.fetchval("SELECT count(*) FROM groups") == 1
    finally:
        await conn.close()

    tid = uuid.uuid4()

    async def boom(conn: Any, _tid: uuid.UUID) -> None:
        raise RuntimeError("owner insert failed")

    with pytest.raises(ProvisioningError, match="step migrate"):
        await provisioner.provision("Hook Fails", tenant_id=tid, on_created=boom)
    assert await registry_conn.fetchval("SELECT count(*) FROM tenants WHERE id=$1", tid) == 0
    assert await _exists(pg_admin, tenant_db_name(settings, tid),
                         tenant_role_name(settings, tid)) == (False, False)


async def test_cancellation_at_any_moment_leaves_nothing(
    provisioner: Provisioner, settings: Settings, registry_conn: Any, pg_admin: PgTarget
) -> None:
    """Cut provisioning off at many points; once the shielded clean-up ends, nothing is left."""
    ids = [uuid.uuid4() for _ in range(12)]
    for i, tid in enumerate(ids):
        with contextlib.suppress(TimeoutError, ProvisioningError):
            await asyncio.wait_for(provisioner.provision(f"Cut {i}", tenant_id=tid),
                                   timeout=0.004 * (i + 1))
    active = {r["id"] for r in await registry_conn.fetch(
        "SELECT id FROM tenants WHERE id = ANY($1::uuid[]) AND status = 'active'", ids)}
    leftovers: list[str] = []
    for _ in range(120):
        leftovers = []
        pending = await registry_conn.fetchval(
            "SELECT count(*) FROM tenants WHERE id = ANY($1::uuid[]) AND status <> 'active'", ids)
        leftovers += ["row"] * pending
        for tid in ids:
            if tid in active:
                continue
            db, role = await _exists(pg_admin, tenant_db_name(settings, tid),
                                     tenant_role_name(settings, tid))
            leftovers += (["db"] if db else []) + (["role"] if role else [])
        if not leftovers:
            break
        await asyncio.sleep(0.25)
    assert leftovers == []


class _ReplyLost:
    """The real admin pool, except that one statement runs on the server and its reply is
    'lost' (the caller is cancelled right after): the window a cancellation can land in."""

    def __init__(self, pool: Any, prefix: str) -> None:
        self._pool, self._prefix = pool, prefix

    async def execute(self, sql: str, *args: Any, **kw: Any) -> Any:
        result = await self._pool.execute(sql, *args, **kw)
        if sql.startswith(self._prefix):
            raise asyncio.CancelledError
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


@pytest.mark.parametrize("statement", ["CREATE ROLE", "CREATE DATABASE"])
async def test_object_made_just_before_a_cancellation_is_removed(
    provisioner: Provisioner, settings: Settings, registry_conn: Any, pg_admin: PgTarget,
    statement: str,
) -> None:
    server = await registry_conn.fetchrow("SELECT * FROM db_servers WHERE name = 'primary'")
    real = await provisioner._admin_pool(server)
    provisioner._admin_pools[server["id"]] = _ReplyLost(real, statement)
    tid = uuid.uuid4()
    try:
        with pytest.raises(asyncio.CancelledError):
            await provisioner.provision("Reply Lost", tenant_id=tid)
        for _ in range(120):  # the shielded clean-up may still be running
            left = await _exists(pg_admin, tenant_db_name(settings, tid),
                                 tenant_role_name(settings, tid))
            if left == (False, False):
                break
            await asyncio.sleep(0.25)
        assert left == (False, False)
        assert await registry_conn.fetchval("SELECT count(*) FROM tenants WHERE id=$1", tid) == 0
    finally:
        provisioner._admin_pools[server["id"]] = real
