"""What an operator does to a church's logins from the `ywm` command (no HTTP involved)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from ..config import Settings
from ..crypto import SecretBox
from ..db import pg
from ..db.dsn import PgTarget
from ..errors import OperationError
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .revocations import Revocations


@dataclass(frozen=True)
class Revoked:
    """What `revoke_sessions` ended."""

    sessions: int
    admins: tuple[uuid.UUID, ...]


async def revoke_sessions(registry: Any, settings: Settings, box: SecretBox,
                          tenant_id: uuid.UUID, *, admin_id: uuid.UUID | None,
                          ticket: str | None = None) -> Revoked:
    """End every session of one admin (or of every admin) of a church, and refuse their access
    tokens at once in every API process: the families are revoked, each admin's
    tokens_valid_after moves, and the revocations are pushed through the registry, all before
    the church's transaction commits (so either everything stands or nothing changed)."""
    info = await rq(settings.sql_dir).sup_tenant(registry, tenant_id)
    if info is None:
        raise OperationError(f"no tenant {tenant_id}")
    password = box.open(bytes(info["db_password_enc"]), f"tenant-role:{tenant_id}")
    target = PgTarget(host=info["server_host"], port=info["server_port"], user=info["db_role"],
                      password=password, database=info["db_name"])
    q = tq(settings.sql_dir)
    push = Revocations(registry, settings)
    conn = await pg.connect(target)
    try:
        async with conn.transaction():
            admins = [r["id"] for r in await q.list_admins(conn)
                      if admin_id is None or r["id"] == admin_id]
            if admin_id is not None and not admins:
                raise OperationError(f"tenant {tenant_id} has no admin {admin_id}")
            sessions = 0
            for who in admins:
                ended = await q.revoke_admin_sessions(conn, who, "security", None)
                await q.invalidate_admin_tokens(conn, who)
                await push.admin(tenant_id, who, await q.admin_valid_after(conn, who))
                await q.insert_audit(conn, None, "operator", "auth.sessions_revoked", "admin",
                                     str(who), orjson.dumps({"sessions": ended,
                                                             "ticket": ticket}).decode(),
                                     None, None)
                sessions += ended
    finally:
        await conn.close()
    return Revoked(sessions, tuple(admins))
