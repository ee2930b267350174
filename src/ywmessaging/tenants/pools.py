"""The asyncpg pool as a tenant actor sees it: the part of its API the actor uses (a counting
fake in the supervisor's unit tests), the factory that makes one, and the bounds on handing a
connection back and closing one."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .directory import TenantInfo

CLOSE_TIMEOUT = 5.0
RELEASE_TIMEOUT = 5.0


class PoolLike(Protocol):
    """The part of asyncpg.Pool the actor uses (a counting fake in the supervisor's unit tests)."""

    def acquire(self, *, timeout: float | None = None) -> Any: ...
    async def release(self, connection: Any, *, timeout: float | None = None) -> None: ...
    async def close(self) -> None: ...
    def terminate(self) -> None: ...
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...


PoolFactory = Callable[[TenantInfo, int], Awaitable[PoolLike]]


def is_closed(conn: Any) -> bool:
    """Whether a connection says it is closed (one without `is_closed` never is)."""
    is_closed = getattr(conn, "is_closed", None)
    return bool(is_closed()) if is_closed is not None else False


async def close_connection(pool: PoolLike, conn: Any) -> None:
    """Close an acquired connection (its pool holder becomes free and unconnected)."""
    try:
        await conn.close(timeout=CLOSE_TIMEOUT)
    except Exception:
        with contextlib.suppress(Exception):
            conn.terminate()
    await pool.release(conn, timeout=RELEASE_TIMEOUT)  # a no-op for a closed asyncpg one
