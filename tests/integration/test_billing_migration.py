"""Registry migration 0009 on a registry that has churches: the old `trial` plan becomes a
starter trial of 14 days from the migration (or the church's own, if later), and each church
gets its first billing history row."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

from tests.integration.registry_upgrade import registry_before
from ywmessaging.db.dsn import PgTarget


async def test_existing_churches_get_a_trial_from_the_migration(pg_admin: PgTarget,
                                                                 db_prefix: str,
                                                                 tmp_path: Path) -> None:
    async with registry_before(pg_admin, db_prefix, tmp_path,
                               "0009_add_billing_state.sql") as reg:
        conn = reg.conn
        ids = await _seed(conn)
        await reg.upgrade()
        rows = {r["id"]: r for r in await conn.fetch(
            "SELECT id, plan, subscription_status, trial_ends_at - now() AS left_, "
            "billing_version FROM tenants")}
        expired, long_trial, paying = (rows[i] for i in ids)
        assert (expired["plan"], expired["subscription_status"]) == ("starter", "trialing")
        assert 13.9 < expired["left_"].total_seconds() / 86400 <= 14
        assert 29 < long_trial["left_"].total_seconds() / 86400 <= 30   # its own, later
        assert (paying["plan"], paying["subscription_status"]) == ("growth", "active")
        history = await conn.fetch("SELECT tenant_id, version, source FROM billing_history")
        assert sorted((r["tenant_id"], r["version"], r["source"]) for r in history) == \
            sorted((i, 1, "migration") for i in ids)


async def _seed(conn: Any) -> list[uuid.UUID]:
    server = await conn.fetchval(
        "INSERT INTO db_servers (name, host, admin_user, template_db, conn_budget) "
        "VALUES ('s1', 'db1.example', 'postgres', 'tpl', 10) RETURNING id")
    ids = [uuid.uuid4() for _ in range(3)]
    for n, (tid, plan, status, ends) in enumerate(zip(
            ids, ("trial", "trial", "growth"), ("trialing", "trialing", "active"),
            ("now() - interval '3 days'", "now() + interval '30 days'", "NULL"), strict=True)):
        await conn.execute(
            "INSERT INTO tenants (id, name, server_id, db_name, db_role, db_password_enc, plan, "
            f"subscription_status, status, trial_ends_at) VALUES ($1, $2, $3, $4, $5, '\\x00', "
            f"$6, $7, 'active', {ends})",
            tid, f"Church {n}", server, f"db_{n}", f"role_{secrets.token_hex(4)}", plan, status)
    return ids
