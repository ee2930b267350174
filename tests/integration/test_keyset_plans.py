"""Every keyset list reads its own page and no more, however deep the cursor, even once
PostgreSQL has switched the prepared statement to its cached generic plan (it does after five
runs). A cursor test written `$n IS NULL OR (keys) < (cursor)` cannot start an index scan at the
cursor in a generic plan, so each page would read everything before it: a church's 50,000th
audit row would cost 50,000 index entries per page."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.auth_fixtures import *  # noqa: F403
from tests.integration.auth_fixtures import Client, register
from ywmessaging.config import Settings
from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget
from ywmessaging.sqlq import tenant as tq
from ywmessaging.tenants.naming import tenant_db_name

ROWS = 2000
DEEP = 1500
LIMIT = 50

SEED = f"""
INSERT INTO members (first_name, last_name, phone, created_at)
SELECT 'F' || g, 'L' || lpad(g::text, 5, '0'), '+1213555' || lpad(g::text, 4, '0'),
       now() - g * interval '1 minute'
FROM generate_series(1, {ROWS}) g;
INSERT INTO consent_events (member_id, kind, source, occurred_at)
SELECT (SELECT id FROM members ORDER BY phone LIMIT 1), 'opt_in', 'admin',
       now() - g * interval '1 minute'
FROM generate_series(1, {ROWS}) g;
INSERT INTO audit_log (actor_kind, action, created_at)
SELECT 'system', 'seed.row', now() - g * interval '1 minute' FROM generate_series(1, {ROWS}) g;
INSERT INTO broadcasts (body, target_kind, created_at)
SELECT 'seed', 'all', now() - g * interval '1 minute' FROM generate_series(1, {ROWS}) g;
INSERT INTO outbox (broadcast_id, to_phone, body)
SELECT (SELECT id FROM broadcasts ORDER BY created_at LIMIT 1), '+12135550000', 'seed'
FROM generate_series(1, {ROWS}) g;
INSERT INTO outbox (broadcast_id, to_phone, body)
SELECT b.id, '+12135550001', 'other' FROM broadcasts b ORDER BY b.created_at DESC LIMIT 50;
INSERT INTO conversations (member_id, last_message_at, status)
SELECT id, created_at, CASE WHEN random() < 0.5 THEN 'open' ELSE 'closed' END FROM members;
INSERT INTO conversation_messages (conversation_id, direction, body, created_at)
SELECT (SELECT id FROM conversations ORDER BY last_message_at LIMIT 1), 'inbound', 'seed',
       now() - g * interval '1 minute'
FROM generate_series(1, {ROWS}) g;
"""

# statement, the table its pages walk, the rows in the statement's own order (the cursor is
# the row DEEP into them), a query for the parameters before the cursor, those after it
CASES: list[tuple[str, str, str, str, str]] = [
    ("list_members_name_asc", "members",
     "SELECT last_name, first_name, id FROM members ORDER BY 1, 2, 3", "", ""),
    ("list_members_name_desc", "members",
     "SELECT last_name, first_name, id FROM members ORDER BY 1 DESC, 2 DESC, 3 DESC", "", ""),
    ("list_members_created_asc", "members",
     "SELECT created_at, id FROM members ORDER BY 1, 2", "", ""),
    ("list_members_created_desc", "members",
     "SELECT created_at, id FROM members ORDER BY 1 DESC, 2 DESC", "", ""),
    ("export_members_page", "members", "SELECT created_at, id FROM members ORDER BY 1, 2",
     "", ""),
    ("list_consent_events", "consent_events",
     "SELECT occurred_at, id FROM consent_events ORDER BY 1 DESC, 2 DESC",
     "SELECT member_id FROM consent_events LIMIT 1", ""),
    ("list_audit_log", "audit_log", "SELECT created_at, id FROM audit_log ORDER BY 1 DESC, 2 DESC",
     "", "NULL, NULL"),
    ("bc_list", "broadcasts", "SELECT created_at, id FROM broadcasts ORDER BY 1 DESC, 2 DESC",
     "SELECT NULL::text", ""),
    ("bc_recipients", "outbox",
     "SELECT id FROM outbox WHERE body = 'seed' ORDER BY id",
     "SELECT id, NULL::text FROM broadcasts ORDER BY created_at LIMIT 1", ""),
    ("cv_list", "conversations",
     "SELECT last_message_at, id FROM conversations ORDER BY 1 DESC, 2 DESC",
     "SELECT NULL::text", ""),
    ("cv_messages", "conversation_messages",
     "SELECT created_at, id FROM conversation_messages ORDER BY 1 DESC, 2 DESC",
     "SELECT conversation_id FROM conversation_messages LIMIT 1", ""),
]


def _rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows the scans of `table` in an EXPLAIN ANALYZE plan returned or filtered away (summed
    over loops)."""
    own = 0
    if plan.get("Relation Name") == table:
        loops = int(plan.get("Actual Loops", 1))
        own = (int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))) * loops
    return own + sum(_rows_read(p, table) for p in plan.get("Plans", []))


def _literal(value: Any) -> str:
    return "NULL" if value is None else f"'{value}'"


@pytest.fixture
async def seeded(api_client: Client, pg_admin: PgTarget, settings: Settings) -> Any:
    """A church's database with ROWS rows in every listed table, as superuser, generic plans
    forced."""
    church = await register(api_client)
    conn = await pg.connect(pg_admin.with_db(tenant_db_name(settings,
                                                            uuid.UUID(church.tenant_id))))
    try:
        await conn.execute(SEED)
        await conn.execute("ANALYZE")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        yield conn
    finally:
        await conn.close()


@pytest.mark.parametrize(("name", "table", "order_sql", "before", "after"), CASES,
                         ids=[c[0] for c in CASES])
async def test_a_deep_page_reads_only_its_own_rows(
        seeded: Any, settings: Settings, name: str, table: str, order_sql: str, before: str,
        after: str) -> None:
    sql = getattr(tq(settings.sql_dir), name).sql
    deep = (await seeded.fetch(order_sql))[DEEP]
    first = tuple((await seeded.fetchrow(before)).values()) if before else ()
    limit = LIMIT if name.startswith("list_members") else LIMIT + 1  # callers ask for one more
    for cursor in (tuple(deep.values()), (None,) * len(deep)):
        args = ", ".join([*map(_literal, first + cursor), *([after] if after else []), str(limit)])
        await seeded.execute(f"PREPARE page_check AS {sql}")
        try:
            doc = await seeded.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page_check({args})")
        finally:
            await seeded.execute("DEALLOCATE page_check")
        read = _rows_read(json.loads(doc)[0]["Plan"], table)
        assert read <= LIMIT + 1, f"{name} read {read} {table} rows for a page ({cursor[0]})"
