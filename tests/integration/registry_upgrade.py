"""A throwaway registry migrated up to just before one migration, for tests of what that
migration does to rows an older release wrote (`registry_before`)."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ywmessaging.config import REPO_ROOT
from ywmessaging.db import migrations, pg
from ywmessaging.db.dsn import PgTarget

SOURCE = REPO_ROOT / "sql" / "registry" / "migrations"


@dataclass
class OlderRegistry:
    """A connection to the older registry; `upgrade()` applies the migration under test."""

    conn: Any
    target: PgTarget
    sql: Path
    migration: str

    async def upgrade(self) -> None:
        """Apply the migration under test (and only it)."""
        shutil.copy(SOURCE / self.migration, self.sql / "registry" / "migrations")
        migrations.clear_cache()
        await asyncio.to_thread(migrations.apply, self.target, self.sql, "registry")


@asynccontextmanager
async def registry_before(pg_admin: PgTarget, db_prefix: str, tmp_path: Path,
                          migration: str) -> AsyncIterator[OlderRegistry]:
    """A new registry database with every migration older than `migration` (a file name in
    sql/registry/migrations), dropped afterwards."""
    sql = tmp_path / "sql"
    older = sql / "registry" / "migrations"
    older.mkdir(parents=True)
    for path in sorted(SOURCE.glob("*.sql")):
        if path.name < migration[:4]:
            shutil.copy(path, older / path.name)
    name = f"{db_prefix}_regmig_{secrets.token_hex(3)}"
    admin = await pg.connect(pg_admin)
    await admin.execute(f'CREATE DATABASE "{name}"')
    target = pg_admin.with_db(name)
    try:
        await asyncio.to_thread(migrations.apply, target, sql, "registry")
        conn = await pg.connect(target)
        try:
            yield OlderRegistry(conn, target, sql, migration)
        finally:
            await conn.close()
    finally:
        migrations.clear_cache()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
