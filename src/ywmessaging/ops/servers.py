"""Database servers for operators: add one (with its template), list them live, drain/activate,
change a server's tenant cap and connection budget."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from ..errors import ConfigError, OperationError
from ..registry.servers import (
    admin_target,
    budget_from_max_connections,
    read_limits,
    register_server,
)
from ..sqlq import registry as rq
from ..tenants.template import ensure_template

SERVER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
STATES = ("active", "draining", "down")
# `ywm servers list` asks every server at once; a server slower than this shows `unreachable`.
PROBE_TIMEOUT = 3.0


@dataclass(frozen=True)
class ServerStatus:
    """One `ywm servers list` line: the registry row plus what the server says right now."""

    row: Any
    open_connections: int | None  # None: the server did not answer

    @property
    def open_text(self) -> str:
        """Open connections, or `unreachable`."""
        return "unreachable" if self.open_connections is None else str(self.open_connections)


def _first_line(text: str) -> str:
    return (text.strip() or "unknown error").splitlines()[0]


async def add_server(
    conn: Any, settings: Settings, box: SecretBox, *, name: str, dsn: str,
    max_tenants: int = 500, budget: int | None = None,
) -> Any:
    """Register a server, create and migrate its template, then open it for placement.

    The row is inserted `down` so that no tenant is placed there before its template exists;
    if the template cannot be made the row is removed again and the error raised.
    """
    if not SERVER_NAME_RE.match(name):
        raise ConfigError("server name must be 1-63 of a-z 0-9 _ . - starting with a letter "
                          "or digit")
    if max_tenants < 1:
        raise ConfigError("--max-tenants must be at least 1")
    if budget is not None and budget < 1:
        raise ConfigError("--budget must be at least 1")
    target = PgTarget.parse(dsn)
    q = rq(settings.sql_dir)
    if await q.find_server(conn, name) is not None:
        raise OperationError(f"a server named {name!r} is already registered")
    try:
        row = await register_server(conn, settings, box, name=name, target=target,
                                    max_tenants=max_tenants, conn_budget=budget, state="down")
    except OperationError as exc:
        raise OperationError(_first_line(str(exc))) from exc
    except asyncpg.UniqueViolationError:
        raise OperationError(
            f"{target.host}:{target.port} is already registered (or the name {name!r} is taken)"
        ) from None
    try:
        await ensure_template(conn, settings, box, row)
    except BaseException as exc:
        await q.delete_empty_server(conn, row["id"])
        if not isinstance(exc, Exception):
            raise
        raise OperationError(
            f"server {name} answered, but its template could not be made: "
            f"{_first_line(str(exc))} (registration undone)"
        ) from exc
    await q.set_server_state(conn, row["id"], "active")
    return await q.find_server(conn, str(row["id"]))


async def resolve_server(conn: Any, settings: Settings, ref: str) -> Any:
    """A server row by id or name, or an OperationError naming what was asked for."""
    row = await rq(settings.sql_dir).find_server(conn, ref.strip())
    if row is None:
        raise OperationError(f"no database server {ref!r} (see `ywm servers list`)")
    return row


async def set_state(conn: Any, settings: Settings, ref: str, state: str) -> Any:
    """Change a server's state; `draining` stops new placements there, `active` resumes them."""
    if state not in STATES:
        raise ConfigError(f"server state must be one of {', '.join(STATES)}")
    row = await resolve_server(conn, settings, ref)
    await rq(settings.sql_dir).set_server_state(conn, row["id"], state)
    return await resolve_server(conn, settings, str(row["id"]))


@dataclass(frozen=True)
class Sizing:
    """A server's row after `ywm servers set`, and its limits as read from it just now
    (None: not asked, or it did not answer and --force was given)."""

    row: Any
    max_connections: int | None = None
    superuser_reserved: int | None = None

    @property
    def usable(self) -> int | None:
        """Connections non-superusers may open there: what a budget must fit in."""
        if self.max_connections is None or self.superuser_reserved is None:
            return None
        return self.max_connections - self.superuser_reserved


async def set_sizing(conn: Any, settings: Settings, box: SecretBox, ref: str, *,
                     max_tenants: int | None = None, budget: int | str | None = None,
                     force: bool = False) -> Sizing:
    """Change a server's `max_tenants` and/or `conn_budget` (`auto`: derived from its
    max_connections, as `ywm servers add` does). A budget is checked against what the server
    allows now unless `force`; running processes are notified and re-balance at once."""
    if max_tenants is None and budget is None:
        raise ConfigError("nothing to change: give --max-tenants and/or --budget")
    if max_tenants is not None and max_tenants < 1:
        raise ConfigError("--max-tenants must be at least 1")
    if isinstance(budget, str) and budget != "auto":
        raise ConfigError("--budget must be a number of connections or `auto`")
    if isinstance(budget, int) and budget < 1:
        raise ConfigError("--budget must be at least 1")
    row = await resolve_server(conn, settings, ref)
    limits: tuple[int, int] | None = None
    if budget is not None:
        limits = await _limits(row, box, need=(budget == "auto" or not force))
    if limits is not None:
        maxc, reserved = limits
        if budget == "auto":
            budget = budget_from_max_connections(maxc, reserved)
        elif isinstance(budget, int) and budget > maxc - reserved and not force:
            raise OperationError(
                f"budget {budget} exceeds what server {row['name']} allows: max_connections "
                f"{maxc} - superuser_reserved_connections {reserved} = {maxc - reserved} "
                "(leave room for operators; --force sets it anyway)")
    assert budget is None or isinstance(budget, int)
    q = rq(settings.sql_dir)
    await q.set_server_sizing(conn, row["id"], max_tenants, budget,
                              limits[0] if limits else None)
    if budget is not None:  # every process heartbeats now and takes its new share
        await q.hb_notify(conn, "ops:budget")
    new = await resolve_server(conn, settings, str(row["id"]))
    return Sizing(new, *limits) if limits else Sizing(new)


async def _limits(row: Any, box: SecretBox, *, need: bool) -> tuple[int, int] | None:
    """The server's (max_connections, superuser_reserved_connections); None when it does not
    answer and the caller can do without."""
    try:
        return await read_limits(admin_target(row, box), timeout=PROBE_TIMEOUT)
    except Exception as exc:  # refused, timed out, auth failed, undecryptable password
        if not need:
            return None
        raise OperationError(
            f"cannot read max_connections of server {row['name']} "
            f"({row['host']}:{row['port']}): {_first_line(str(exc) or type(exc).__name__)} "
            "(--force sets a number "
            "unchecked)") from exc


async def open_connections(settings: Settings, box: SecretBox, row: Any,
                           registry_db: str) -> int | None:
    """Sessions on this deployment's databases on one server now; None if it does not answer."""
    like = settings.db_prefix.replace("_", r"\_") + r"\_%"
    try:
        conn = await pg.connect(admin_target(row, box), timeout=PROBE_TIMEOUT)
    except Exception:  # refused, timed out, auth failed, or a password we cannot decrypt
        return None
    try:
        count = await rq(settings.sql_dir).server_open_connections(
            conn, like, registry_db, timeout=PROBE_TIMEOUT)
        return int(count)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return None
    finally:
        await conn.close(timeout=PROBE_TIMEOUT)


async def server_statuses(conn: Any, settings: Settings, box: SecretBox) -> list[ServerStatus]:
    """Every server with its live connection count, asked concurrently (each bounded)."""
    rows = await rq(settings.sql_dir).list_servers(conn)
    registry_db = PgTarget.parse(settings.require_database_url()).database
    counts = await asyncio.gather(
        *(open_connections(settings, box, r, registry_db) for r in rows)
    )
    return [ServerStatus(row=r, open_connections=c) for r, c in zip(rows, counts, strict=True)]


def describe_row(row: Any) -> list[tuple[str, str]]:
    """A server row as (field, value) pairs for printing, without the sealed password."""
    keys = ("id", "name", "host", "port", "admin_user", "maintenance_db", "template_db",
            "template_version", "state", "max_tenants", "conn_budget", "max_connections",
            "weight", "tenant_count", "created_at")
    return [(k, "" if row[k] is None else str(row[k])) for k in keys if k in row]
