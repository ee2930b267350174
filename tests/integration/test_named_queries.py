"""Every named query prepares against freshly migrated registry and tenant databases."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from ywmessaging.config import Settings
from ywmessaging.crypto import SecretBox
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.sqlq import registry, tenant
from ywmessaging.tenants.provisioning import Provisioner


async def _prepare_all(conn: Any, queries: Any) -> list[str]:
    failures = []
    for q in queries:
        try:
            stmt = await conn.prepare(q.sql)
        except asyncpg.PostgresError as exc:
            failures.append(f"{q.source} {q.name}: {exc}")
            continue
        if len(stmt.get_parameters()) != q.params:
            failures.append(f"{q.source} {q.name}: {len(stmt.get_parameters())} parameters")
    return failures


async def test_registry_queries_prepare(settings: Settings, registry_conn: Any) -> None:
    queries = registry(settings.sql_dir)
    assert len(queries) > 0
    assert await _prepare_all(registry_conn, queries) == []


async def test_tenant_queries_prepare(settings: Settings, box: SecretBox,
                                      pg_admin: PgTarget) -> None:
    assert settings.database_url
    pool = await pg.create_pool(PgTarget.parse(settings.database_url), max_size=2)
    prov = Provisioner(pool, settings, box)
    try:
        t = await prov.provision("Query Check Church")
    finally:
        await prov.close()
        await pool.close()
    conn = await pg.connect(pg_admin.with_db(t.db_name))
    try:
        queries = tenant(settings.sql_dir)
        assert len(queries) > 0
        assert await _prepare_all(conn, queries) == []
    finally:
        await conn.close()


async def test_a_column_typo_is_caught(settings: Settings, registry_conn: Any) -> None:
    """The check above would fail on a typo: prove it on a deliberately broken statement."""
    from ywmessaging.db.queries import Query

    broken = Query(name="broken", kind="one", sql="SELECT nmae FROM tenants", purpose="x",
                   source="test", params=0)
    failures = await _prepare_all(registry_conn, [broken])
    assert len(failures) == 1 and "nmae" in failures[0]


@pytest.mark.parametrize("tree", ["registry", "tenant"])
def test_every_query_has_a_purpose(settings: Settings, tree: str) -> None:
    qs = registry(settings.sql_dir) if tree == "registry" else tenant(settings.sql_dir)
    assert all(q.purpose for q in qs)
