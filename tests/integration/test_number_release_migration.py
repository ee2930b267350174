"""Registry migration 0011 on a registry that has numbers: `pending` and `active` ones keep no
window, a number left `releasing` by the old immediate release (its process died) gets
release_after now(), so the worker's sweep finishes it; an archived number must have a
window."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests.integration.registry_upgrade import registry_before
from ywmessaging.db.dsn import PgTarget

MIGRATION = "0011_archive_released_numbers.sql"


async def test_old_releasing_numbers_become_due_for_the_sweep(
        pg_admin: PgTarget, db_prefix: str, tmp_path: Path) -> None:
    async with registry_before(pg_admin, db_prefix, tmp_path, MIGRATION) as reg:
        conn = reg.conn
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
        await reg.upgrade()
        rows = await conn.fetch(
            "SELECT e164, status, release_after <= now() AS due, release_attempts "
            "FROM phone_numbers ORDER BY e164")
        assert [tuple(r) for r in rows] == [
            ("+12065550100", "active", None, 0), ("+12065550101", "pending", None, 0),
            ("+12065550102", "releasing", True, 0)]
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE phone_numbers SET status = 'archived' "
                               "WHERE e164 = '+12065550100'")
