"""Find a PostgreSQL server for the tests: DATABASE_URL, then 127.0.0.1:5432, then embedded.

`YWM_TEST_EMBEDDED=1` skips 127.0.0.1:5432, to run the suite as a machine without a server.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from ywmessaging.db import pg
from ywmessaging.db.dsn import PgTarget


async def _answers(target: PgTarget) -> bool:
    try:
        conn = await pg.connect(target, timeout=3)
    except Exception:  # any failure means "not this one"
        return False
    await conn.close()
    return True


async def find_server() -> tuple[PgTarget, Any]:
    """An admin target on a running server, and a handle to stop (None unless embedded)."""
    url = os.environ.get("YWM_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        target = PgTarget.parse(url).with_db("postgres")
        if not await _answers(target):
            raise RuntimeError(f"test database server does not answer: {target.describe()}")
        return target, None
    local = PgTarget(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    if not os.environ.get("YWM_TEST_EMBEDDED") and await _answers(local):
        return local, None
    from ywmessaging.db import embedded

    pgdata = Path(tempfile.mkdtemp(prefix="ywm-test-pg-"))
    target, handle = embedded.start(pgdata, cleanup_mode="delete")
    return target.with_db("postgres"), handle


async def drop_everything(admin: PgTarget, prefix: str, concurrency: int = 8) -> None:
    """Drop every database and role whose name starts with `prefix_` (test clean-up).

    Drops run several at a time: each DROP DATABASE waits for a checkpoint, and concurrent
    drops share one.
    """
    conn = await pg.connect(admin)
    try:
        like = prefix.replace("_", r"\_") + r"\_%"
        # a DROP DATABASE cut off half-way leaves an invalid database, which only DROP accepts
        names = [(r["datname"], r["datistemplate"]) for r in await conn.fetch(
            "SELECT datname, datistemplate FROM pg_database WHERE datname LIKE $1", like
        )]
        roles = [r["rolname"] for r in await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", like
        )]
    finally:
        await conn.close()
    pool = await pg.create_pool(admin, max_size=concurrency)
    try:
        async def drop(name: str, template: bool) -> None:
            async with pool.acquire() as c:
                if template:
                    await c.execute(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
                await pg.drop_database(c, name)

        await asyncio.gather(*(drop(n, t) for n, t in names))
        for role in roles:
            await pg.drop_role(pool, role)
    finally:
        await pool.close()
