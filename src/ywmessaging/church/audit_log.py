"""Reading the audit log: newest first, keyset pages (the writers are auth/audit.py and
church/__init__.py)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ..config import Settings
from ..sqlq import tenant as tq
from .pagination import decode_cursor, page

CURSOR_KIND = "audit_log:created:desc"


def entry_json(row: Any) -> dict[str, Any]:
    """One audit entry as the API shows it."""
    out = dict(row)
    out["admin_id"] = str(row["admin_id"]) if row["admin_id"] is not None else None
    detail = out["detail"]
    if isinstance(detail, str):
        out["detail"] = orjson.loads(detail)
    return out


async def list_entries(conn: Any, settings: Settings, *, cursor: str | None, limit: int,
                       action: str | None, admin_id: uuid.UUID | None) -> dict[str, Any]:
    """A page of entries after `cursor` (400 `invalid_cursor` if it is not one of ours)."""
    after: tuple[Any, ...] = (None, None)
    if cursor is not None:
        after = decode_cursor(cursor, CURSOR_KIND, ("timestamp", "int"))
    rows = await tq(settings.sql_dir).list_audit_log(conn, after[0], after[1], action,
                                                      admin_id, limit + 1)
    items, next_cursor = page(rows, limit, CURSOR_KIND, lambda r: (r["created_at"], r["id"]))
    return {"items": [entry_json(r) for r in items], "next_cursor": next_cursor}
