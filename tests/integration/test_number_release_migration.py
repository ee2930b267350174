"""Registry migration 0011 on a registry that has numbers: `pending` and `active` ones keep no
window, a number left `releasing` by the old immediate release (its process died) gets
release_after now(), so the worker's sweep finishes it; an archived number must have a
window."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from ywmessaging.config import REPO_ROOT
from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget

MIGRATION = "0011_archive_released_numbers.sql"


async def test_old_releasing_numbers_become_due_for_the_sweep(
        pg_admin: PgTarget, db_prefix: str, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    older = sql / "registry" / "migrations"
    older.mkdir(parents=True)
    source = REPO_ROOT / "sql" / "registry" / "migrations"
    for path in sorted(source.glob("*.sql")):
        if path.name < MIGRATION[:4]:
            shutil.copy(path, older / path.name)
    name = f"{db_prefix}_numrel_mig_{secrets.token_hex(3)}"
    admin = await pg.connect(pg_admin)
    await admin.execute(f'CREATE DATABASE "{name}"')
    target = pg_admin.with_db(name)
    try:
        await asyncio.to_thread(migrations.apply, target, sql, "registry")
        conn = await pg.connect(target)
        try:
            server = await conn.fetchval(
                "INSERT INTO db_servers (name, host, admin_user, template_db, conn_budget) "
                "VALUES ('s1', 'db1.example', 'postgres', 'tpl', 10) RETURNING id")
            tenant = uuid.uuid4()
            await conn.execute(
                "INSERT INTO tenants (id, name, server_id, db_name, db_role, db_password_enc, "
                "status) VALUES ($1, 'Grace', $2, 'db_1', $3, '\\x00', 'active')",
                tenant, server, f"role_{secrets.token_hex(4)}")
            for e164, status, order in (("+12065550100", "active", None),
                                        ("+12065550101", "pending", "order-1"),
                                        ("+12065550102", "releasing", None)):
                await conn.execute(
                    "INSERT INTO phone_numbers (e164, tenant_id, status, carrier_order_id) "
                    "VALUES ($1, $2, $3, $4)", e164, tenant, status, order)
            shutil.copy(source / MIGRATION, older)
            migrations.clear_cache()
            await asyncio.to_thread(migrations.apply, target, sql, "registry")
            rows = await conn.fetch(
                "SELECT e164, status, release_after <= now() AS due, release_attempts "
                "FROM phone_numbers ORDER BY e164")
            assert [tuple(r) for r in rows] == [
                ("+12065550100", "active", None, 0), ("+12065550101", "pending", None, 0),
                ("+12065550102", "releasing", True, 0)]
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE phone_numbers SET status = 'archived' "
                                   "WHERE e164 = '+12065550100'")
        finally:
            await conn.close()
    finally:
        migrations.clear_cache()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
