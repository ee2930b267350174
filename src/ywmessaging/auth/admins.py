"""Co-admins: invite by email, list, change role or names, remove; the last owner stays.

Owner checks lock every active owner row first (in id order), so two owners demoting or
removing each other at the same moment cannot leave the church without one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from ..billing import limits
from ..billing.state import entitlement
from ..errors import NotFound
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from .audit import record
from .emails import invitation_email
from .errors import EmailTaken, LastOwner
from .permissions import OWNER
from .state import AuthServices, Client, Principal
from .tokens import INVITE_PREFIX, new_opaque

log = structlog.get_logger("ywm.admins")

INVITE_TTL_S = 7 * 86_400


async def list_admins(conn: Any, svc: AuthServices) -> list[Any]:
    """Every admin of the church."""
    rows: list[Any] = await tq(svc.settings.sql_dir).list_admins(conn)
    return rows


async def invite(conn: Any, svc: AuthServices, registry: Any, who: Principal, *, email: str,
                 first_name: str, last_name: str, role: str, client: Client) -> Any:
    """Create an invited admin and email them a single-use link to set their password (402
    `plan_limit_reached` at the plan's co-admins limit, counted in the same transaction)."""
    q = tq(svc.settings.sql_dir)
    ent = await entitlement(registry, svc.settings, who.tenant_id, datetime.now(UTC))
    admin_id = uuid.uuid4()
    try:
        await rq(svc.settings.sql_dir).insert_admin_login(registry, email, who.tenant_id,
                                                          admin_id)
    except asyncpg.UniqueViolationError:
        raise EmailTaken(field="email") from None
    token, digest = new_opaque(INVITE_PREFIX, who.tenant_id)
    try:
        async with conn.transaction():
            await limits.reserve(conn, svc.settings, ent, "co_admins")
            row = await q.invite_admin(conn, admin_id, email, first_name, last_name, role,
                                       digest, float(INVITE_TTL_S))
            await record(conn, svc.settings, "admin.invited", tenant_id=who.tenant_id,
                         admin_id=who.admin_id, client=client, target_id=admin_id,
                         detail={"role": role})
    except BaseException:
        await rq(svc.settings.sql_dir).delete_admin_login(registry, who.tenant_id, admin_id)
        raise
    church = await tq(svc.settings.sql_dir).get_settings(conn)
    inviter = await q.get_admin_profile(conn, who.admin_id)
    link = f"{svc.settings.frontend_url.rstrip('/')}/accept-invitation#token={token}"
    message = invitation_email(email, church["church_name"] or "your church",
                               f"{inviter['first_name']} {inviter['last_name']}".strip(),
                               link, INVITE_TTL_S // 86_400)
    try:
        await svc.emails.send(message)
    except Exception as exc:  # the admin row stands; the owner can remove and re-invite
        log.error("email_send_failed", kind="invitation", tenant_id=str(who.tenant_id),
                  error=type(exc).__name__)
    return row


async def _guard_last_owner(conn: Any, svc: AuthServices, target_id: uuid.UUID,
                            losing_owner: bool) -> Any:
    """Lock the owners and the target; LastOwner if the change would leave no active owner."""
    q = tq(svc.settings.sql_dir)
    owners = await q.lock_active_owners(conn)
    target = await q.lock_admin(conn, target_id)
    if target is None:
        raise NotFound("no such admin")
    is_active_owner = target["role"] == OWNER and target["status"] == "active"
    if losing_owner and is_active_owner and len(owners) <= 1:
        raise LastOwner()
    return target


async def remove(conn: Any, svc: AuthServices, registry: Any, who: Principal,
                 target_id: uuid.UUID, *, client: Client) -> None:
    """Remove an admin (sessions end with it) and release its login email."""
    q = tq(svc.settings.sql_dir)
    async with conn.transaction():
        target = await _guard_last_owner(conn, svc, target_id, losing_owner=True)
        await q.delete_admin(conn, target_id)
        await svc.revocations.removed(who.tenant_id, target_id)
        await record(conn, svc.settings, "admin.removed", tenant_id=who.tenant_id,
                     admin_id=who.admin_id, client=client, target_id=target_id,
                     detail={"role": target["role"]})
    await rq(svc.settings.sql_dir).delete_admin_login(registry, who.tenant_id, target_id)


async def update(conn: Any, svc: AuthServices, who: Principal, target_id: uuid.UUID, *,
                 role: str | None, first_name: str | None, last_name: str | None,
                 client: Client) -> Any:
    """Change role and names; a role change ends the target's sessions."""
    q = tq(svc.settings.sql_dir)
    async with conn.transaction():
        target = await _guard_last_owner(conn, svc, target_id,
                                         losing_owner=role is not None and role != OWNER)
        row = await q.update_admin(conn, target_id, role, first_name, last_name)
        changed_role = role is not None and role != target["role"]
        if changed_role:
            await q.revoke_admin_sessions(conn, target_id, "role_changed", None)
            await svc.revocations.admin(who.tenant_id, target_id,
                                        await q.admin_valid_after(conn, target_id))
        await record(conn, svc.settings, "admin.role_changed" if changed_role else "admin.updated",
                     tenant_id=who.tenant_id, admin_id=who.admin_id, client=client,
                     target_id=target_id,
                     detail={"role": row["role"], "previous_role": target["role"]}
                     if changed_role else {})
    return row
