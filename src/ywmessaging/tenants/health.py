"""Which failures say what about a tenant database or its server, and the health probe."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import Any

import asyncpg

PROBE_SQL = "SELECT 1"


class Fault(StrEnum):
    """What a failure to connect or query tells the breakers."""

    DEFINITIVE = "definitive"  # the tenant's database is gone or refuses this role: open now
    SERVER = "server"          # the server is unreachable, full or shutting down
    SLOW = "slow"              # connecting timed out: the tenant's breaker; its server's only
                               # when several of its tenants time out in a row
    TENANT = "tenant"          # this tenant's connection broke; count towards its breaker
    NONE = "none"              # an ordinary query error, not about availability


_DEFINITIVE = (
    asyncpg.InvalidCatalogNameError,               # 3D000: database dropped
    asyncpg.ObjectNotInPrerequisiteStateError,     # 55000: ALLOW_CONNECTIONS false
    asyncpg.InvalidAuthorizationSpecificationError,  # 28000/28P01: role gone, bad password
    asyncpg.InsufficientPrivilegeError,            # 42501: CONNECT revoked
)
_SERVER = (
    asyncpg.CannotConnectNowError,      # 57P03: starting up / shutting down
    asyncpg.TooManyConnectionsError,    # 53300
    asyncpg.ConnectionRejectionError,
    OSError,                            # refused, unreachable, reset while connecting
)
_LOST = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,         # 57P01: terminated by an administrator
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,        # the protocol got out of step (server-side kill)
    ConnectionError,
)
# asyncpg.InterfaceError is a programming error (another operation in progress, a released
# connection used): it says nothing about the database and never feeds a breaker, unless the
# connection is in fact closed (checked through `conn.is_closed()`).


def classify_connect(exc: BaseException) -> Fault:
    """Classify a failure to open or acquire a connection (or of a health probe)."""
    if isinstance(exc, _DEFINITIVE):
        return Fault.DEFINITIVE
    if isinstance(exc, TimeoutError):
        return Fault.SLOW
    if isinstance(exc, _SERVER) and not isinstance(exc, ConnectionResetError):
        return Fault.SERVER
    if isinstance(exc, asyncpg.InterfaceError) and not isinstance(exc, _LOST):
        return Fault.NONE
    return Fault.TENANT


def classify_in_use(exc: BaseException, conn: Any = None) -> Fault:
    """Classify an exception raised while a lease's connection was in use.

    Only a lost connection counts: query errors (including permission or lock errors, which
    share SQLSTATE classes with the connect-time faults) say nothing about availability.
    """
    if isinstance(exc, _LOST):
        return Fault.TENANT
    is_closed = getattr(conn, "is_closed", None)
    if is_closed is not None and is_closed():
        return Fault.TENANT
    return Fault.NONE


def describe(exc: BaseException) -> str:
    """A short description for logs and the operator endpoint (class and first line)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}"[:200] if text else name


async def probe(pool: Any, timeout: float) -> None:
    """One `SELECT 1` through the pool, bounded by `timeout` overall (raises on failure)."""
    async with asyncio.timeout(timeout):
        conn = await pool.acquire(timeout=timeout)
        try:
            await conn.fetchval(PROBE_SQL, timeout=timeout)
        finally:
            await pool.release(conn, timeout=timeout)
