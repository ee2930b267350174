"""Import jobs: a small file is imported inside its request; a large one is stored (compressed)
in its `imports` row and imported by a background task, its progress readable at any time.

A job's row is its lease: `claim_import` moves it from queued to running, and a running job
whose owner stopped updating it for STALE_S seconds (the process died or shut down) may be
claimed again and resumed after its last committed batch.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import IO, Any

import orjson
import structlog

from ..auth.audit import clean_ip
from ..billing.state import Entitlement
from ..config import Settings
from ..errors import NotFound, PayloadTooLarge
from ..sqlq import tenant as tq
from . import Actor, audit, rows_json
from .csvio import CHUNK, SPOOL_MEMORY, Upload
from .imports import ImportSource, Tally, prepare, run, skip

INLINE_MAX_ROWS = 5000
STALE_S = 60.0
MAX_STORED = 10 * 1024 * 1024  # imports.source_csv's CHECK
Lease = Callable[[], AbstractAsyncContextManager[Any]]

log = structlog.get_logger("ywm.imports")


@dataclass(frozen=True)
class Started:
    """The answer to an upload: the job's row, whether it already ran, the ignored columns."""

    job: dict[str, Any]
    done: bool
    ignored_columns: list[str]


def job_json(row: Any) -> dict[str, Any]:
    """An import job as the API shows it."""
    out = rows_json(row, ("id", "created_by"))
    errors = out.pop("errors")
    out["errors"] = orjson.loads(errors) if isinstance(errors, str) else errors
    return out


async def start(conn: Any, settings: Settings, actor: Actor, ent: Entitlement, upload: Upload,
                filename: str) -> Started:
    """Import a small upload now (on `conn`) or queue a large one; nothing is written before
    the header is read and checked."""
    source = await asyncio.to_thread(ImportSource, upload.file)
    if upload.data_lines > INLINE_MAX_ROWS:
        job = await _queue(conn, settings, actor, upload, filename)
        return Started(job, False, source.ignored)
    job = await _inline(conn, settings, actor, ent, source, filename, upload.data_lines)
    return Started(job, True, source.ignored)


async def _queue(conn: Any, settings: Settings, actor: Actor, upload: Upload,
                 filename: str) -> dict[str, Any]:
    """Store the upload (compressed) in a queued job; the caller starts it."""
    blob = await asyncio.to_thread(_compress, upload.file)
    if len(blob) > MAX_STORED:
        raise PayloadTooLarge("the file is too large to queue as one import")
    async with conn.transaction():
        row = await tq(settings.sql_dir).insert_import(
            conn, "queued", filename, blob, upload.data_lines, actor.admin_id)
        await audit(conn, settings, actor, "members.import_queued", "import", row["id"],
                    {"filename": filename, "rows": upload.data_lines})
    return job_json(row)


async def _inline(conn: Any, settings: Settings, actor: Actor, ent: Entitlement,
                  source: ImportSource, filename: str, lines: int) -> dict[str, Any]:
    """Run the import on the request's connection; the finished job."""
    q = tq(settings.sql_dir)
    row = await q.insert_import(conn, "running", filename, None, lines, actor.admin_id)
    await prepare(conn, settings, source)

    @asynccontextmanager
    async def same() -> AsyncIterator[Any]:
        yield conn

    try:
        tally = await run(same, settings, ent, source, import_id=row["id"],
                          admin_id=actor.admin_id, tally=Tally())
    except Exception:
        await _fail(conn, settings, row["id"], "the import stopped")
        raise
    async with conn.transaction():
        done = await q.finish_import(conn, row["id"], "done", "[]")
        await audit(conn, settings, actor, "members.import", "import", row["id"],
                    _counts(filename, tally))
    return job_json(done)


async def get(conn: Any, settings: Settings, import_id: uuid.UUID) -> dict[str, Any]:
    """One import job and its report (404 if the church has none with this id)."""
    row = await tq(settings.sql_dir).get_import(conn, import_id)
    if row is None:
        raise NotFound("no import with this id")
    return job_json(row)


def resumable(job: dict[str, Any], now_age_s: float) -> bool:
    """Whether a job looks abandoned: queued, or running without progress for STALE_S."""
    return job["status"] == "queued" or (job["status"] == "running" and now_age_s > STALE_S)


PROGRESS_EVERY_S = 1.0   # import.progress events at most this often per job


def _every(seconds: float, call: Callable[[Tally], None]) -> Callable[[Tally], None]:
    """`call`, skipped when it ran less than `seconds` ago."""
    last = [-seconds]

    def maybe(tally: Tally) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            call(tally)

    return maybe


# What a background job reports to the church's live events: (event type, data).
Report = Callable[[str, dict[str, Any]], None]


def _report(report: Report | None, import_id: uuid.UUID, status: str, tally: Tally) -> None:
    if report is not None:
        report("import.progress" if status == "running" else "import.completed", {
            "import_id": import_id, "status": status, "rows": tally.processed,
            "created": tally.created, "updated": tally.updated, "skipped": tally.skipped})


async def run_job(lease: Lease, settings: Settings, ent: Entitlement,
                  import_id: uuid.UUID, report: Report | None = None) -> None:
    """Claim a stored job and import it; a cancelled job stays running (resumable).
    Progress after each batch and the end go to `report` (the church's live events)."""
    q = tq(settings.sql_dir)
    async with lease() as conn:
        claim = await q.claim_import(conn, import_id, STALE_S)
        if claim is None:
            return  # done, failed, or another process has it
        blob = await q.import_source(conn, import_id)
    file: IO[bytes] | None = None
    try:
        file = await asyncio.to_thread(_decompress, blob)
        del blob
        source = await asyncio.to_thread(ImportSource, file)
        async with lease() as conn:
            await prepare(conn, settings, source)
        await skip(source, claim["processed_rows"])
        tally = Tally(claim["processed_rows"], claim["created"], claim["updated"],
                      claim["skipped"], claim["error_count"])
        tally = await run(lease, settings, ent, source, import_id=import_id,
                          admin_id=claim["created_by"], tally=tally,
                          progress=_every(PROGRESS_EVERY_S, lambda t: _report(
                              report, import_id, "running", t)))
        async with lease() as conn, conn.transaction():
            row = await q.finish_import(conn, import_id, "done", "[]")
            await _system_audit(conn, settings, claim["created_by"], import_id,
                                _counts(row["filename"], tally))
        log.info("import_done", import_id=str(import_id), rows=tally.processed)
        _report(report, import_id, "done", tally)
    except Exception as exc:
        log.exception("import_failed", import_id=str(import_id))
        async with lease() as conn:
            await _fail(conn, settings, import_id, f"the import stopped: {type(exc).__name__}")
        _report(report, import_id, "failed", Tally())
    finally:
        if file is not None:
            file.close()


async def _fail(conn: Any, settings: Settings, import_id: uuid.UUID, message: str) -> None:
    """End a job as failed; the rows of the batches already committed stay imported."""
    error = {"line": None, "code": "import_failed", "field": None, "message": message}
    await tq(settings.sql_dir).finish_import(conn, import_id, "failed",
                                             orjson.dumps([error]).decode())


def _counts(filename: str, tally: Tally) -> dict[str, Any]:
    return {"filename": filename, "rows": tally.processed, "created": tally.created,
            "updated": tally.updated, "skipped": tally.skipped}


async def _system_audit(conn: Any, settings: Settings, admin_id: uuid.UUID | None,
                        import_id: uuid.UUID, detail: dict[str, Any]) -> None:
    """The audit row of a finished background import (on behalf of the admin who sent it)."""
    await tq(settings.sql_dir).insert_audit(
        conn, admin_id, "system", "members.import", "import", str(import_id),
        orjson.dumps(detail).decode(), clean_ip(None), None)


def _compress(f: IO[bytes]) -> bytes:
    """The whole upload, zlib-compressed (CSV shrinks about fourfold)."""
    f.seek(0)
    comp = zlib.compressobj(6)
    parts = [comp.compress(chunk) for chunk in iter(lambda: f.read(CHUNK), b"")]
    parts.append(comp.flush())
    f.seek(0)
    return b"".join(parts)


def _decompress(blob: bytes) -> IO[bytes]:
    """A stored upload back in a temporary file (memory up to 1 MiB, then disk)."""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
    decomp = zlib.decompressobj()
    for i in range(0, len(blob), CHUNK):
        out.write(decomp.decompress(blob[i:i + CHUNK]))
    out.write(decomp.flush())
    out.seek(0)
    return out


async def record_export(conn: Any, settings: Settings, actor: Actor) -> None:
    """The audit row of a member export (it hands out every member's number)."""
    await audit(conn, settings, actor, "members.export", "members", "all")
