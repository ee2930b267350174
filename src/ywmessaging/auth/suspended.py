"""The login row of an admin of a *suspended* church, so a login can check the password before
it says the church is suspended (answering 423 to any password would tell strangers that the
email has an account).

The pool supervisor gives no leases for a suspended church, so this reads over one short
connection of the church's own role, bounded by the tenant connect timeout. While a church is
being moved its role cannot connect; then nothing is read and the login fails like a wrong
password.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import structlog
from cryptography.exceptions import InvalidTag

from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .state import AuthServices

log = structlog.get_logger("ywm.auth")

QUERY_TIMEOUT_S = 2.0


async def suspended_admin(svc: AuthServices, registry: Any, tenant_id: uuid.UUID,
                          admin_id: uuid.UUID) -> Any | None:
    """`get_admin_for_login` of one admin of a suspended church, or None if it cannot be read."""
    s = svc.settings
    row = await rq(s.sql_dir).sup_tenant(registry, tenant_id)
    if row is None or row["status"] != "suspended":
        return None
    try:
        password = svc.box.open(bytes(row["db_password_enc"]), f"tenant-role:{tenant_id}")
        conn = await asyncpg.connect(
            host=row["server_host"], port=row["server_port"], user=row["db_role"],
            password=password, database=row["db_name"], timeout=s.tenant_connect_timeout,
            server_settings={"application_name": "ywm-auth"},
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError,
            InvalidTag) as exc:
        log.warning("suspended_login_unreadable", tenant_id=str(tenant_id),
                    error=type(exc).__name__)
        return None
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_S):
            return await tq(s.sql_dir).get_admin_for_login(conn, admin_id)
    finally:
        await conn.close(timeout=QUERY_TIMEOUT_S)
