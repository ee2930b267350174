"""The church's directory: members, groups, branches, and the audit trail of their changes.

Data functions here take the tenant connection first, then the settings and the acting admin
(an `Actor`), and never see the request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from ..auth.audit import clean_ip
from ..config import Settings
from ..sqlq import tenant as tq


@dataclass(frozen=True)
class Actor:
    """Who is changing the church's data, for the audit log."""

    admin_id: uuid.UUID
    ip: str | None
    request_id: str | None


def rows_json(row: Any, uuid_fields: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    """A record as a JSON-ready dict (asyncpg's UUID type is not one orjson knows)."""
    out = dict(row)
    for name in uuid_fields:
        value = out.get(name)
        if value is not None:
            out[name] = str(value)
    return out


async def audit(conn: Any, settings: Settings, actor: Actor, action: str, target_type: str,
                target_id: Any, detail: dict[str, Any] | None = None) -> None:
    """One row in the tenant's audit log (the same statement auth/audit.py writes with).

    auth/audit.record names every target an `admin`; directory writes need their own target
    type, hence this thin variant over the same named query.
    """
    await tq(settings.sql_dir).insert_audit(
        conn, actor.admin_id, "admin", action, target_type, str(target_id),
        orjson.dumps(detail or {}).decode(), clean_ip(actor.ip),
        actor.request_id[:100] if actor.request_id else None,
    )
