"""What `GET /api/v1/integrations/planning-center` shows: the connection (never a token) and
the latest sync run with its report and progress."""

from __future__ import annotations

from typing import Any

import orjson

from ..church import rows_json
from ..config import Settings
from ..sqlq import tenant as tq


def run_json(row: Any) -> dict[str, Any]:
    """A sync run as the API shows it."""
    out = rows_json(row, ("id", "created_by"))
    errors = out.pop("errors")
    out["errors"] = orjson.loads(errors) if isinstance(errors, str) else errors
    return out


async def status(conn: Any, settings: Settings) -> dict[str, Any]:
    """The church's connection and its last run."""
    q = tq(settings.sql_dir)
    row = await q.pco_get_connection(conn)
    last = await q.pco_last_run(conn)
    state = "disconnected" if row is None or row["status"] != "connected" else "connected"
    return {
        "status": state,
        "organization_id": row["organization_id"] if state == "connected" else None,
        "organization_name": row["organization_name"] if state == "connected" else None,
        "connected_at": row["connected_at"] if state == "connected" else None,
        "token_expires_at": row["expires_at"] if state == "connected" else None,
        "sync_lists": bool(row["sync_lists"]) if row is not None else False,
        "last_error": row["last_error"] if row is not None else None,
        "last_sync_at": row["cursor_updated_at"] if state == "connected" else None,
        "last_run": run_json(last) if last is not None else None,
    }


async def set_options(conn: Any, settings: Settings, *, sync_lists: bool) -> None:
    """Whether lists become groups (the connection row may not exist yet)."""
    q = tq(settings.sql_dir)
    if await q.pco_get_connection(conn) is None:
        await q.pco_begin(conn, None, None, None, None)
    await q.pco_set_options(conn, sync_lists)
