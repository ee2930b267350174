"""Writing one full export: every exported table streamed by `COPY (allow-list query) TO
STDOUT` straight into a deflated ZIP entry on disk, then `manifest.json`.

Memory stays bounded whatever the church's size: asyncpg hands each chunk of COPY data to the
entry's `write` (run in a worker thread, where zlib compresses it) and reads no more from the
socket until that returns; nothing holds a table or a row list. All tables are read in one
REPEATABLE READ READ ONLY transaction, so the CSVs and their counts are one consistent
snapshot. The file is written as `<id>.zip.part` and renamed only once complete.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import uuid
import zipfile
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import orjson
import structlog

from ..config import Settings
from ..db import migrations
from ..sqlq import tenant as tq
from . import exports
from .export_tables import EXCLUDED, exported

log = structlog.get_logger("ywm.exports")

FORMAT = "ywmessaging-export"
FORMAT_VERSION = 1
TABLE_TIMEOUT_S = 3600.0    # one table's COPY (a million outbox rows take seconds)
FAIL_TIMEOUT_S = 10.0
Lease = Callable[[], AbstractAsyncContextManager[Any]]
CSV_NOTE = ("UTF-8, comma separated, a header row, quoted as PostgreSQL's CSV format does: a "
            "NULL is an empty unquoted field, an empty text is \"\"; timestamps are ISO 8601 "
            "in UTC; arrays as {a,b}; JSON as text. Rows are in no particular order.")


async def run_job(lease: Lease, settings: Settings, tenant_id: uuid.UUID,
                  export_id: uuid.UUID) -> None:
    """Claim a queued export and write it; a failed or cancelled one is marked failed and
    leaves no file behind."""
    q = tq(settings.sql_dir)
    async with lease() as conn:
        if await q.export_claim(conn, export_id) is None:
            return  # another process has it, or it ended
    final = exports.file_of(settings, tenant_id, export_id)
    part = final.with_name(final.name + ".part")
    try:
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        manifest = await write(lease, settings, part, tenant_id=tenant_id, export_id=export_id)
        size = (await asyncio.to_thread(part.stat)).st_size
        await asyncio.to_thread(os.replace, part, final)
        async with lease() as conn:
            if await q.export_finish(conn, export_id, size, orjson.dumps(manifest).decode(),
                                     exports.TTL_S) is None:
                raise RuntimeError("the export's row changed while it ran")
        log.info("export_done", export_id=str(export_id), rows=manifest["total_rows"],
                 bytes=size)
    except BaseException as exc:
        for path in (part, final):
            path.unlink(missing_ok=True)
        if isinstance(exc, Exception):
            log.exception("export_failed", export_id=str(export_id))
            reason = f"the export stopped: {type(exc).__name__}"
        else:   # cancelled (shutdown): a ZIP cannot be resumed, so it ends here
            log.warning("export_interrupted", export_id=str(export_id))
            reason = "the export was interrupted (the server stopped); start a new one"
        try:
            async with asyncio.timeout(FAIL_TIMEOUT_S), lease() as conn:
                await q.export_fail(conn, export_id, reason)
        except Exception:
            log.warning("export_fail_not_recorded", export_id=str(export_id))
        if not isinstance(exc, Exception):
            raise


async def write(lease: Lease, settings: Settings, path: Path, *, tenant_id: uuid.UUID,
                export_id: uuid.UUID) -> dict[str, Any]:
    """Write the ZIP at `path` from one snapshot; its manifest (also stored in the ZIP)."""
    q = tq(settings.sql_dir)
    tables = exported(q)
    listed: list[dict[str, Any]] = []
    total = 0
    archive = await asyncio.to_thread(zipfile.ZipFile, path, "w", zipfile.ZIP_DEFLATED)
    try:
        async with lease() as conn, conn.transaction(isolation="repeatable_read",
                                                      readonly=True):
            snap = await q.export_begin_snapshot(conn)
            for table, query in tables:
                columns = [a.name for a in (await conn.prepare(query.sql)).get_attributes()]
                rows = await _copy_table(conn, archive, f"{table}.csv", query.sql)
                total += rows
                listed.append({"name": table, "file": f"{table}.csv", "rows": rows,
                               "columns": columns})
                async with lease() as beat:     # progress, and proof the job is alive
                    await q.export_progress(beat, export_id, len(listed), total)
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "export_id": str(export_id),
            "church_id": str(tenant_id), "schema_version":
                migrations.code_version(settings.sql_dir, "tenant"),
            "snapshot_at": _iso(snap["snapshot_at"]), "total_rows": total, "tables": listed,
            "excluded_tables": dict(sorted(EXCLUDED.items())), "csv": CSV_NOTE,
        }
        await asyncio.to_thread(archive.writestr, "manifest.json",
                                orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    finally:
        await asyncio.to_thread(archive.close)
    return manifest


async def _copy_table(conn: Any, archive: zipfile.ZipFile, name: str, sql: str) -> int:
    """Stream one allow-list query into a new ZIP entry; the rows written."""
    entry = await asyncio.to_thread(archive.open, name, "w", force_zip64=True)
    try:
        # a file-like output: asyncpg calls entry.write in a worker thread, chunk by chunk
        status = await conn.copy_from_query(sql, output=entry, format="csv", header=True,
                                            timeout=TABLE_TIMEOUT_S)
    finally:
        await asyncio.to_thread(entry.close)
    return int(str(status).rsplit(" ", 1)[-1])


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat()
