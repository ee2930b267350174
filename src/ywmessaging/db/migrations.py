"""yoyo-migrations wrapper. yoyo is synchronous: call these through `asyncio.to_thread`."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from yoyo import get_backend, read_migrations

from .dsn import PgTarget

TREES = ("registry", "tenant")
MIGRATION_TABLE = "_yoyo_migration"
_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+$")
_cache: dict[tuple[str, str], Any] = {}
_cache_lock = threading.Lock()


class MigrationError(Exception):
    """A migration that could not be read or applied; says which and why."""


@dataclass
class ApplyResult:
    """What one `apply` did to one database."""

    from_version: int
    to_version: int
    applied: list[str] = field(default_factory=list)


def folder(sql_dir: Path, tree: str) -> Path:
    """The migrations folder of a tree."""
    if tree not in TREES:
        raise ValueError(f"unknown migration tree {tree!r}")
    return sql_dir / tree / "migrations"


def migration_ids(sql_dir: Path, tree: str) -> list[str]:
    """Ids (file stems) of a tree's migrations, in order, checking their names."""
    path = folder(sql_dir, tree)
    if not path.is_dir():
        raise MigrationError(f"no migrations folder at {path}")
    ids = sorted(p.stem for p in path.glob("*.sql") if not p.stem.endswith(".rollback"))
    for mid in ids:
        if not _FILE_RE.match(mid):
            raise MigrationError(f"{path / mid}.sql: name it NNNN_verb_object.sql")
    numbers = [int(m[:4]) for m in ids]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"{path}: two migrations share a number")
    return ids


def version_of(ids: list[str] | set[str]) -> int:
    """The schema version a set of applied migration ids stands for (highest number, 0 if none)."""
    numbers = [int(m[:4]) for m in ids if _FILE_RE.match(m)]
    return max(numbers, default=0)


def code_version(sql_dir: Path, tree: str) -> int:
    """The schema version this code needs for a tree."""
    return version_of(migration_ids(sql_dir, tree))


def _migrations(sql_dir: Path, tree: str) -> Any:
    key = (str(sql_dir), tree)
    with _cache_lock:
        if key not in _cache:
            migration_ids(sql_dir, tree)  # name checks
            _cache[key] = read_migrations(str(folder(sql_dir, tree)))
        return _cache[key]


def clear_cache() -> None:
    """Forget parsed migration folders (tests that add a migration call this)."""
    with _cache_lock:
        _cache.clear()


def pending(target: PgTarget, sql_dir: Path, tree: str) -> tuple[int, list[str]]:
    """(current version, ids still to apply) for one database, without changing it."""
    migrations = _migrations(sql_dir, tree)
    backend = get_backend(target.yoyo_uri(), migration_table=MIGRATION_TABLE)
    try:
        todo = backend.to_apply(migrations)
        done = [m.id for m in migrations if m not in todo]
        return version_of(done), [m.id for m in todo]
    finally:
        backend.connection.close()


def apply(target: PgTarget, sql_dir: Path, tree: str, lock_timeout: float = 30) -> ApplyResult:
    """Apply every pending migration of `tree` to one database under yoyo's lock."""
    migrations = _migrations(sql_dir, tree)
    try:
        backend = get_backend(target.yoyo_uri(), migration_table=MIGRATION_TABLE)
    except Exception as exc:
        raise MigrationError(f"cannot connect to {target.describe()}: {_first_line(exc)}") from exc
    try:
        with backend.lock(timeout=lock_timeout):
            todo = backend.to_apply(migrations)
            done = [m.id for m in migrations if m not in todo]
            result = ApplyResult(from_version=version_of(done), to_version=version_of(done))
            for migration in todo:
                try:
                    backend.apply_one(migration)
                except Exception as exc:
                    result.to_version = version_of(done)
                    raise MigrationError(
                        f"{migration.id} failed on {target.describe()}: {_first_line(exc)}"
                    ) from exc
                done.append(migration.id)
                result.applied.append(migration.id)
            result.to_version = version_of(done)
            return result
    finally:
        backend.connection.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


# yoyo's own bookkeeping table, not one of our named queries.
_APPLIED_IDS_SQL = f"SELECT migration_id FROM {MIGRATION_TABLE}"


async def registry_schema_version(conn: Any, timeout: float | None = None) -> int:
    """The registry schema version recorded by yoyo (0 when nothing was ever applied)."""
    try:
        rows = await conn.fetch(_APPLIED_IDS_SQL, timeout=timeout)
    except asyncpg.UndefinedTableError:
        return 0
    return version_of({r["migration_id"] for r in rows})
