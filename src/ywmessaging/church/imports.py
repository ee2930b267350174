"""Member CSV import: each record checked and normalized, then upserted by phone in batches.

A batch (its upserts, group links and the job's progress row) commits in one transaction, so
`processed_rows` is exact and a resumed job skips exactly the rows already done. A row the
database still refuses (a rule the checks below missed) is retried alone in a savepoint and
reported, so one bad row never takes the batch with it. Imported members are opted in (new
ones with an `import` consent event); an import never opts an opted-out member back in.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import IO, Any

import asyncpg
import orjson

from ..billing import limits
from ..billing.state import Entitlement
from ..config import Settings
from ..sqlq import tenant as tq
from .csvio import Record, RecordReader
from .member_rows import MemberRow, RowError, RowParser, map_columns

BATCH = 1000
MAX_ERRORS = 1000          # row errors kept in a report; `skipped` counts them all
Lease = Callable[[], AbstractAsyncContextManager[Any]]

@dataclass
class Tally:
    """What an import has done so far."""

    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors_kept: int = 0


@dataclass
class Batch:
    """Up to BATCH consecutive records, parsed."""

    records: int = 0
    rows: list[MemberRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


class ImportSource:
    """The records of a spooled CSV, parsed in batches (in a worker thread: CPU-bound).

    Reading the header checks the columns, so a file without a phone column is refused
    before anything is written.
    """

    def __init__(self, f: IO[bytes]) -> None:
        self._reader = RecordReader(f)
        header = self._reader.header()
        self.columns, self.ignored = map_columns(header)
        self.width = len(header)
        self._records: Iterator[Record] = iter(self._reader)
        self.parser: RowParser | None = None

    def next_batch(self, size: int = BATCH) -> Batch:
        """The next `size` records (fewer at the end; none when done)."""
        if self.parser is None:
            raise RuntimeError("prepare() the source first")
        batch = Batch()
        for rec in self._records:
            batch.records += 1
            parsed = self.parser.parse(rec)
            if isinstance(parsed, RowError):
                batch.errors.append(parsed)
            else:
                batch.rows.append(parsed)
            if batch.records >= size:
                break
        return batch


async def prepare(conn: Any, settings: Settings, source: ImportSource) -> None:
    """Give the source its row parser: the church's phone region and branches."""
    q = tq(settings.sql_dir)
    row = await q.get_settings(conn)
    branches = {r["key"]: r["id"] for r in await q.import_branches(conn)}
    source.parser = RowParser(source.columns, source.width, row["default_region"], branches)


async def skip(source: ImportSource, records: int) -> None:
    """Pass over records a resumed job already did (their phones still count as seen)."""
    while records > 0:
        batch = await asyncio.to_thread(source.next_batch, min(records, BATCH))
        if batch.records == 0:
            return
        records -= batch.records


async def run(lease: Lease, settings: Settings, ent: Entitlement, source: ImportSource, *,
              import_id: uuid.UUID, admin_id: uuid.UUID | None, tally: Tally,
              progress: Callable[[Tally], None] | None = None) -> Tally:
    """Apply every remaining batch; each commits together with the job's progress row
    (then `progress` hears the tally so far).

    The next batch is parsed (in a thread) while the database applies this one.
    """
    pending = asyncio.ensure_future(asyncio.to_thread(source.next_batch))
    try:
        while (batch := await pending).records:
            pending = asyncio.ensure_future(asyncio.to_thread(source.next_batch))
            async with lease() as conn, conn.transaction():
                done = await apply_batch(conn, settings, ent, batch, import_id=import_id,
                                         admin_id=admin_id, tally=tally)
            tally.processed += batch.records
            tally.created += done.created
            tally.updated += done.updated
            tally.skipped += done.skipped
            tally.errors_kept += done.errors_kept
            if progress is not None:
                progress(tally)
        return tally
    finally:
        if not pending.done():  # let the thread finish with the file before it is closed
            await asyncio.wait([pending])


async def apply_batch(conn: Any, settings: Settings, ent: Entitlement, batch: Batch, *,
                      import_id: uuid.UUID, admin_id: uuid.UUID | None, tally: Tally) -> Tally:
    """Upsert one batch and count it in the job's row (inside the caller's transaction);
    what this batch did. `tally` (the job so far) is only read."""
    created = updated = 0
    errors = list(batch.errors)
    await tq(settings.sql_dir).import_async_commit(conn)
    rows, over = await _within_limit(conn, settings, ent, batch.rows)
    errors.extend(RowError(r.line, "plan_limit_reached") for r in over)
    try:
        async with conn.transaction():
            created, updated = await _upsert(conn, settings, rows, import_id, admin_id)
    except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
        for row in rows:  # find the rows the database refuses; keep the others
            try:
                async with conn.transaction():
                    c, u = await _upsert(conn, settings, [row], import_id, admin_id)
                created, updated = created + c, updated + u
            except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError):
                errors.append(RowError(row.line, "rejected"))
    errors.sort(key=lambda e: e.line)
    kept = [e.as_json() for e in errors[:max(0, MAX_ERRORS - tally.errors_kept)]]
    await tq(settings.sql_dir).import_progress(
        conn, import_id, tally.processed + batch.records, created, updated, len(errors),
        orjson.dumps(kept).decode())
    return Tally(batch.records, created, updated, len(errors), len(kept))


async def _within_limit(conn: Any, settings: Settings, ent: Entitlement,
                        rows: list[MemberRow]) -> tuple[list[MemberRow], list[MemberRow]]:
    """Split a batch into rows to apply and rows refused by the plan's members limit: rows
    updating a member always pass, new ones while there is room, in file order. The limit's
    lock is held to the end of the batch's transaction, so concurrent creations count these."""
    room = await limits.room(conn, settings, ent, "members")
    if room is None or not rows:
        return rows, []
    found = await tq(settings.sql_dir).limit_existing_phones(conn, [r.phone for r in rows])
    existing = {rec["phone"] for rec in found}
    keep: list[MemberRow] = []
    over: list[MemberRow] = []
    for r in rows:
        if r.phone in existing or room > 0:
            room -= r.phone not in existing
            keep.append(r)
        else:
            over.append(r)
    return keep, over


async def _upsert(conn: Any, settings: Settings, rows: list[MemberRow], import_id: uuid.UUID,
                  admin_id: uuid.UUID | None) -> tuple[int, int]:
    """Upsert rows (sorted by phone: concurrent imports lock in one order); (created, updated)."""
    if not rows:
        return 0, 0
    q = tq(settings.sql_dir)
    rows = sorted(rows, key=lambda r: r.phone)
    groups = sorted({g for r in rows for g in r.groups})
    if groups:
        await q.import_ensure_groups(conn, groups)
    result = await q.import_upsert_members(
        conn, [r.phone for r in rows], [r.first_name for r in rows],
        [r.last_name for r in rows], [r.email for r in rows], [r.branch_id for r in rows],
        [r.notes for r in rows], admin_id, str(import_id))
    if groups:
        ids = {rec["phone"]: rec["id"] for rec in result}
        pairs = [(ids[r.phone], g) for r in rows for g in r.groups]
        await q.import_link_groups(conn, [p[0] for p in pairs], [p[1] for p in pairs])
    created = sum(1 for rec in result if rec["created"])
    return created, len(result) - created
