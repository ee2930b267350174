"""Small asyncpg helpers: bounded connects, database existence, admin statements."""

from __future__ import annotations

from typing import Any

import asyncpg

from .dsn import PgTarget, quote_ident

CONNECT_TIMEOUT = 10.0


async def connect(target: PgTarget, timeout: float = CONNECT_TIMEOUT, **kw: Any) -> Any:
    """One asyncpg connection with a bounded connect time."""
    return await asyncpg.connect(**target.connect_kwargs(), timeout=timeout, **kw)


async def create_pool(target: PgTarget, *, min_size: int = 0, max_size: int = 10,
                      **kw: Any) -> Any:
    """An asyncpg pool that opens connections lazily."""
    return await asyncpg.create_pool(
        **target.connect_kwargs(), min_size=min_size, max_size=max_size,
        timeout=CONNECT_TIMEOUT, **kw,
    )


async def keep_session(conn: Any) -> None:
    """A pool `reset` that sends nothing: only what asyncpg always does on release (roll back
    an open transaction, drop listener callbacks), without the round trip of its default
    `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`.

    Safe only for pools whose statements leave no session state: no session advisory locks
    (the `_xact_` ones end with the transaction), no LISTEN, no `SET` without LOCAL, no WITH
    HOLD cursors (tests/unit/test_supervisor_accounting.py checks the named queries)."""


async def database_exists(conn: Any, name: str) -> bool:
    """Whether a database of that name exists on the connection's server."""
    return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))


async def role_exists(conn: Any, name: str) -> bool:
    """Whether a role of that name exists on the connection's server."""
    return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name))


async def ensure_database(admin: PgTarget, name: str) -> bool:
    """Create database `name` on the admin target's server unless it exists; True if created."""
    conn = await connect(admin.with_db(admin.database if admin.database != name else "postgres"))
    try:
        if await database_exists(conn, name):
            return False
        try:
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def drop_database(conn: Any, name: str) -> None:
    """Drop a database, ending any session on it first (PostgreSQL 13+ FORCE)."""
    await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


async def drop_role(conn: Any, name: str) -> None:
    """Drop a role if it exists."""
    await conn.execute(f"DROP ROLE IF EXISTS {quote_ident(name)}")


async def restrict_connect(target: PgTarget) -> None:
    """Revoke CONNECT on the target's database from PUBLIC, keeping it for the connecting
    role: tenant roles must reach their own database only (not the registry or a template)."""
    conn = await connect(target)
    try:
        db = quote_ident(target.database)
        async with conn.transaction():
            # two concurrent GRANTs on one database fail with "tuple concurrently updated"
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('ywm_db_acl:' || $1))",
                               target.database)
            await conn.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
            await conn.execute(f"GRANT ALL ON DATABASE {db} TO CURRENT_USER")
    finally:
        await conn.close()
