"""Database servers: registration, connection targets, the first server at first migrate."""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from ..errors import OperationError
from ..sqlq import registry as rq

# Connections kept back from each server's budget: superuser slots, the registry pools of
# every process, and operators' psql sessions.
BUDGET_SHARE = 0.8
RESERVED_FOR_REGISTRY = 10


def admin_target(row: Any, box: SecretBox) -> PgTarget:
    """How operators' code reaches a server as its admin (maintenance database)."""
    password = None
    if row["admin_password_enc"] is not None:
        password = box.open(bytes(row["admin_password_enc"]), f"server:{row['name']}")
    return PgTarget(host=row["host"], port=row["port"], user=row["admin_user"],
                    password=password, database=row["maintenance_db"])


def template_name(settings: Settings) -> str:
    """The template database every tenant on a server is cloned from."""
    return f"{settings.db_prefix}_template"


def budget_from_max_connections(max_connections: int, reserved_superuser: int) -> int:
    """A server's connection budget for tenant pools, from what the server allows."""
    usable = max_connections - reserved_superuser
    return max(4, int(usable * BUDGET_SHARE) - RESERVED_FOR_REGISTRY)


async def read_limits(target: PgTarget, timeout: float = pg.CONNECT_TIMEOUT) -> tuple[int, int]:
    """(max_connections, superuser_reserved_connections) of a server."""
    conn = await pg.connect(target, timeout=timeout)
    try:
        maxc = int(await conn.fetchval("SHOW max_connections", timeout=timeout))
        reserved = int(await conn.fetchval("SHOW superuser_reserved_connections",
                                           timeout=timeout))
        return maxc, reserved
    finally:
        await conn.close(timeout=timeout)


async def register_server(
    conn: Any, settings: Settings, box: SecretBox, *, name: str, target: PgTarget,
    max_tenants: int = 500, conn_budget: int | None = None, state: str = "active",
) -> Any:
    """Check a server answers, then insert its `db_servers` row."""
    try:
        maxc, reserved = await read_limits(target.with_db(target.database or "postgres"))
    except (OSError, Exception) as exc:  # asyncpg raises many kinds
        raise OperationError(f"cannot reach server {target.describe()}: {exc}") from exc
    budget = conn_budget or budget_from_max_connections(maxc, reserved)
    if budget > maxc - reserved:
        raise OperationError(
            f"budget {budget} exceeds what {target.describe()} allows ({maxc - reserved})"
        )
    sealed = box.seal(target.password, f"server:{name}") if target.password else None
    q = rq(settings.sql_dir)
    return await q.insert_server(
        conn, name, target.host, target.port, target.user, sealed, target.database or "postgres",
        template_name(settings), max_tenants, budget, maxc, state,
    )


async def ensure_registry_server(conn: Any, settings: Settings, box: SecretBox) -> Any | None:
    """At first migrate, register the registry's own server; returns the new row or None."""
    q = rq(settings.sql_dir)
    if await q.count_servers(conn) > 0:
        return None
    target = PgTarget.parse(settings.require_database_url()).with_db("postgres")
    return await register_server(conn, settings, box, name="primary", target=target)
