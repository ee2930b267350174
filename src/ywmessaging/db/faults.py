"""Which exceptions mean "the database cannot be reached right now", and their 503.

A driver or connection-level failure (the server is full, starting, shutting down or gone; the
socket broke; a connect or acquire timed out; the pool is closing) is never the client's fault
and never a bug of the route: on any route, registry or tenant, it is answered 503
`database_unavailable` with `Retry-After`. Query errors (a constraint, a syntax error, a
permission) are not in this family and stay what they are.
"""

from __future__ import annotations

import socket

import aiohttp
import asyncpg

from ..errors import ServiceUnavailable

RETRY_AFTER_S = 2

# Errors that say nothing about the statement, only about reaching the server.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,    # class 08, ConnectionDoesNotExistError among them
    asyncpg.TooManyConnectionsError,    # 53300
    asyncpg.CannotConnectNowError,      # 57P03: starting up, shutting down, recovering
    asyncpg.AdminShutdownError,         # 57P01: terminated by an administrator (restart)
    asyncpg.CrashShutdownError,         # 57P02
    asyncpg.InternalClientError,        # the protocol got out of step: the socket broke
    ConnectionError,                    # refused, reset, aborted, broken pipe
    socket.gaierror,                    # the host name does not resolve
    TimeoutError,                       # a bounded connect, acquire or statement ran out
)
# asyncpg raises a bare InterfaceError for these; other InterfaceErrors are programming errors.
_CLOSED_MARKERS = ("connection is closed", "pool is closing", "pool is closed",
                   "the underlying connection is closed")


class DatabaseUnavailable(ServiceUnavailable):
    code, title = "database_unavailable", "The database cannot be reached right now"


def is_connection_error(exc: BaseException) -> bool:
    """Whether `exc` (or every exception of a group) is a connection-level failure."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_connection_error(e) for e in exc.exceptions)
    if isinstance(exc, aiohttp.ClientError):   # an HTTP peer (the carrier), not the database
        return False
    if isinstance(exc, _CONNECTION_ERRORS):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        text = str(exc)
        return any(marker in text for marker in _CLOSED_MARKERS)
    return False


def unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """The 503 standing for a connection-level failure, or None for any other exception."""
    if not is_connection_error(exc):
        return None
    return DatabaseUnavailable(headers={"Retry-After": str(RETRY_AFTER_S)})
