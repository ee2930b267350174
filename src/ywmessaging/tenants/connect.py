"""How a tenant connection is opened: nothing sent but the login and the request's statement.

A cold request pays for one connection to its church's database. Three costs asyncpg would
add on every new connection are paid once per process instead:

- **Type introspection.** asyncpg knows the scalar built-in types, but not their arrays
  (`uuid[]`, `smallint[]`, `bytea[]`...): the first statement on each new connection that uses
  one runs asyncpg's introspection query, with `jit` switched off and on around it (three round
  trips, ~9 ms of server time). Built-in types (OID below 16384) are the same in every database
  of a major version, so `TenantConnection` answers them from a process-wide cache filled by the
  first connection that asks; anything user-defined is introspected as usual.
- **The TLS context.** With `sslmode=prefer` (asyncpg's default, like libpq's) asyncpg builds a
  new `SSLContext` for every connect (2-3 ms of CPU). `TlsChoice` builds one per process and asks
  each server once (an 8-byte SSLRequest) whether it speaks TLS at all.
- **The reset on release** (`keep_session` in runtime.py) and **SCRAM stretching**
  (tenant roles get machine-made 192-bit passwords, so their verifiers use few PBKDF2 rounds:
  see `TENANT_SCRAM_ITERATIONS` and ops/runbook-tenant-pools.md).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import struct
from pathlib import Path
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("ywm.tenant_connect")

FIRST_USER_OID = 16384     # FirstNormalObjectId: OIDs below it are built in
PROBE_TIMEOUT = 2.0
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)

# (server major version, type oid) → the introspection rows asyncpg needs for that type (the
# type and whatever it depends on), shared by every tenant connection of this process.
_BUILTIN_TYPES: dict[tuple[int, int], list[Any]] = {}


class _Cached:
    """Stands for the introspection statement when the answer came from the cache: a named
    statement, so asyncpg does not re-prepare the statement that asked."""

    name = "ywm_builtin_types"


class TenantConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that introspects each built-in type once per process."""

    async def _introspect_types(self, typeoids: Any, timeout: Any) -> tuple[Any, Any]:
        major = self.get_server_version().major
        wanted = list(typeoids)
        if all((major, oid) in _BUILTIN_TYPES for oid in wanted):
            rows: dict[int, Any] = {}
            for oid in wanted:
                for row in _BUILTIN_TYPES[(major, oid)]:
                    rows.setdefault(row["oid"], row)
            return list(rows.values()), _Cached()
        result, stmt = await super()._introspect_types(typeoids, timeout)
        if all(row["oid"] < FIRST_USER_OID for row in result):
            for oid in wanted:
                if oid < FIRST_USER_OID:
                    _BUILTIN_TYPES[(major, oid)] = list(result)
        return result, stmt


def cached_builtin_types() -> int:
    """How many built-in types the process has cached (for tests and the ops endpoint)."""
    return len(_BUILTIN_TYPES)


class TlsChoice:
    """The `ssl` argument for tenant connections, decided once per server.

    PGSSLMODE (libpq's names; `prefer` when unset) is honoured: `disable`/`allow` never use
    TLS; `prefer` uses TLS where the server offers it (asked once per server, then remembered);
    `require` always, without verifying the certificate; `verify-ca`/`verify-full` verify it
    against PGSSLROOTCERT (default ~/.postgresql/root.crt), the latter the host name too. Every
    TLS connection of the process shares one SSLContext.
    """

    def __init__(self, mode: str | None = None) -> None:
        self.mode = (mode or os.environ.get("PGSSLMODE") or "prefer").lower()
        if self.mode not in ("disable", "allow", "prefer", "require", "verify-ca",
                             "verify-full"):
            raise ValueError(f"PGSSLMODE must be a libpq sslmode, not {self.mode!r}")
        self._context: ssl.SSLContext | None = None
        self._offers: dict[tuple[str, int], bool] = {}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    def context(self) -> ssl.SSLContext:
        """The one SSLContext of this process (built on first use)."""
        if self._context is None:
            if self.mode.startswith("verify"):
                root = os.environ.get("PGSSLROOTCERT") or str(
                    Path.home() / ".postgresql" / "root.crt")
                ctx = ssl.create_default_context(cafile=root)
                ctx.check_hostname = self.mode == "verify-full"
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            self._context = ctx
        return self._context

    async def for_server(self, host: str, port: int) -> ssl.SSLContext | bool | str:
        """What to pass as asyncpg's `ssl` for this server."""
        if host.startswith("/") or self.mode in ("disable", "allow"):
            return False
        if self.mode != "prefer":
            return self.context()
        key = (host, port)
        offers = self._offers.get(key)
        if offers is None:
            async with self._locks.setdefault(key, asyncio.Lock()):
                offers = self._offers.get(key)
                if offers is None:
                    answer = await server_offers_tls(host, port)
                    if answer is None:  # unreachable now: let asyncpg negotiate, ask next time
                        return "prefer"
                    offers = self._offers[key] = answer
                    log.info("tenant_server_tls", host=host, port=port, tls=offers)
        return self.context() if offers else False

    def forget(self, host: str, port: int) -> None:
        """Ask the server again next time (it may have been reconfigured)."""
        self._offers.pop((host, port), None)


async def server_offers_tls(host: str, port: int) -> bool | None:
    """Whether a PostgreSQL server accepts TLS (one SSLRequest, answered 'S' or 'N'); None
    when it could not be asked."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(_SSL_REQUEST)
                await writer.drain()
                answer = await reader.readexactly(1)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    return answer == b"S"
