"""Which exceptions are connection-level failures (503 `database_unavailable`) and which not."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest

from ywmessaging.db.faults import is_connection_error, unavailable


@pytest.mark.parametrize("exc", [
    asyncpg.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.InternalClientError("unexpected message"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    asyncpg.InterfaceError("pool is closing"),
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
    ExceptionGroup("two", [ConnectionResetError(), asyncpg.CannotConnectNowError("x")]),
])
def test_connection_level_failures_are_503(exc: Exception) -> None:
    err = unavailable(exc)
    assert err is not None and (err.status, err.code) == (503, "database_unavailable")
    assert int(err.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("exc", [
    asyncpg.UniqueViolationError("duplicate key"),
    asyncpg.QueryCanceledError("canceling statement due to user request"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    aiohttp.ClientConnectorError.__new__(aiohttp.ClientConnectorError),  # the carrier's
    FileNotFoundError("/no/such/file"),
    ValueError("bug"),
    ExceptionGroup("mixed", [ConnectionResetError(), ValueError("bug")]),
])
def test_other_errors_are_not(exc: Exception) -> None:
    assert not is_connection_error(exc)
    assert unavailable(exc) is None
