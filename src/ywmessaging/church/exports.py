"""Full account exports: the job rows (in the church's own database, so no other church can
name one), their files, the start rules, listing, download checks and the expiry sweep.

An export is a ZIP of one CSV per table and a manifest (export_writer.py), written by a
background job (export_runner.py) to `<YWM_EXPORT_DIR>/<church id>/<export id>.zip`. At most
one export per church is queued or running; a finished one (its file and row) is removed by
housekeeping TTL_S after it finished, and refused (410) from then on even before the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..errors import AppError, Conflict, NotFound
from ..sqlq import tenant as tq
from . import Actor, audit
from .export_tables import exported

log = structlog.get_logger("ywm.exports")

TTL_S = 24 * 3600.0         # a file is kept this long after it is done
STALE_S = 900.0             # a running job updates its row after every table; silent: dead
ORPHAN_GRACE_S = 3600.0     # a file without a row is deleted this long after TTL_S


class ExportInProgress(Conflict):
    code, title = "export_in_progress", "An export of this church is already running"


class ExportNotFound(NotFound):
    code, title = "export_not_found", "No export with this id"


class ExportNotReady(Conflict):
    code, title = "export_not_ready", "This export has not finished"


class ExportExpired(AppError):
    status, code, title = 410, "export_expired", "This export has expired"


class ExportFileMissing(AppError):
    status, code, title = 410, "export_file_missing", "This export's file is no longer here"


def folder(settings: Settings, tenant_id: uuid.UUID) -> Path:
    """The church's folder of export files."""
    return settings.export_folder() / str(tenant_id)


def file_of(settings: Settings, tenant_id: uuid.UUID, export_id: uuid.UUID) -> Path:
    """Where a finished export's ZIP is (`.part` beside it while it is written)."""
    return folder(settings, tenant_id) / f"{export_id}.zip"


def export_json(row: Any) -> dict[str, Any]:
    """An export job as the API shows it."""
    manifest = row["manifest"]
    if isinstance(manifest, str):
        manifest = orjson.loads(manifest)
    out = {name: row[name] for name in (
        "status", "tables_total", "tables_done", "rows_done", "size_bytes", "error",
        "created_at", "started_at", "finished_at", "expires_at")}
    out["id"] = str(row["id"])
    out["created_by"] = str(row["created_by"]) if row["created_by"] else None
    out["expired"] = bool(row.get("expired", False))
    out["row_counts"] = ({t["name"]: t["rows"] for t in manifest["tables"]}
                         if manifest else None)
    out["download_url"] = (f"/api/v1/account/exports/{out['id']}"
                           if row["status"] == "done" and not out["expired"] else None)
    return out


async def start(conn: Any, settings: Settings, actor: Actor) -> dict[str, Any]:
    """Queue an export (the caller starts it); 409 export_in_progress while one is queued or
    running (a job silent for STALE_S is failed first: its process died)."""
    q = tq(settings.sql_dir)
    async with conn.transaction():
        await q.export_fail_stale(conn, STALE_S)
        row = await q.export_insert(conn, len(exported(q)), actor.admin_id, TTL_S)
        if row is None:
            active = await q.export_active(conn)
            raise ExportInProgress("wait for it to finish, then download it",
                                   export_id=str(active["id"]) if active else None)
        await audit(conn, settings, actor, "account.export", "export", row["id"])
    return export_json(row)


async def list_exports(conn: Any, settings: Settings) -> list[dict[str, Any]]:
    """The church's exports, newest first."""
    return [export_json(r) for r in await tq(settings.sql_dir).export_list(conn)]


async def download(conn: Any, settings: Settings, tenant_id: uuid.UUID,
                   export_id: uuid.UUID) -> tuple[Path, dict[str, Any]]:
    """The file of a finished, unexpired export and its row (404, 409 or 410 otherwise)."""
    row = await tq(settings.sql_dir).export_get(conn, export_id)
    if row is None:
        raise ExportNotFound()
    if row["expired"]:
        raise ExportExpired("exports are kept 24 hours; start a new one")
    if row["status"] != "done":
        raise ExportNotReady(f"the export is {row['status']}", status_of_export=row["status"])
    path = file_of(settings, tenant_id, export_id)
    if not path.is_file():
        raise ExportFileMissing("start a new export")
    return path, export_json(row)


async def sweep(conn: Any, settings: Settings, tenant_id: uuid.UUID) -> int:
    """Delete expired exports (rows and files) and files no row names any more; rows deleted."""
    ids = [r["id"] for r in await tq(settings.sql_dir).export_sweep(conn, STALE_S)]
    await asyncio.to_thread(_remove_files, folder(settings, tenant_id), ids)
    return len(ids)


def _remove_files(where: Path, ids: list[uuid.UUID]) -> None:
    """The files of deleted rows, and any file older than an export can be (a crash between
    a row's deletion and its file's)."""
    for export_id in ids:
        for path in (where / f"{export_id}.zip", where / f"{export_id}.zip.part"):
            _unlink(path)
    try:
        entries = list(os.scandir(where))
    except FileNotFoundError:
        return
    cutoff = time.time() - TTL_S - ORPHAN_GRACE_S
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                _unlink(Path(entry.path))


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("export_file_not_deleted", path=str(path), error=type(exc).__name__)
