"""The owner schedules or cancels the church's deletion (30 days of grace).

Scheduling is a step-up: the password again (throttled like a login), and a current MFA code
when the owner has MFA on (a wrong password and a wrong code get the same 403). Every admin is
emailed when a deletion is scheduled and when it is cancelled, so a thief with the owner's
session cannot delete a church unnoticed. The teardown itself is ops/teardown.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog

from ..sqlq import tenant as tq
from ..tenants import lifecycle
from .audit import record
from .emails import Email
from .errors import InvalidMfaCode, InvalidPasswordOrCode
from .login import check_second_factor, mfa_transaction, raise_if_locked
from .state import AuthServices, Client, Principal
from .stepup import prove_password

log = structlog.get_logger("ywm.account_deletion")
NOTIFY_TIMEOUT_S = 10.0


async def schedule(conn: Any, svc: AuthServices, registry: Any, who: Principal, *,
                   password: str, code: str | None, client: Client, now: datetime) -> Any:
    """Schedule the deletion (an existing schedule is kept); the lifecycle row."""
    q = tq(svc.settings.sql_dir)
    mfa_row = await q.lock_mfa(conn, who.admin_id)   # outside a transaction: a plain read
    mfa_on = mfa_row is not None and mfa_row["enabled"]
    if mfa_on:
        raise_if_locked(mfa_row)
    await prove_password(conn, svc, registry, who, password=password, client=client,
                         failed_action="account.deletion_failed",
                         error=InvalidPasswordOrCode() if mfa_on else None)
    if mfa_on:
        try:
            async with mfa_transaction(conn, svc, tenant_id=who.tenant_id, client=client):
                await check_second_factor(conn, svc, tenant_id=who.tenant_id,
                                          admin_id=who.admin_id, code=code or "",
                                          client=client)
        except InvalidMfaCode:
            raise InvalidPasswordOrCode() from None
    due = await lifecycle.schedule_deletion(registry, svc.settings, who.tenant_id,
                                            actor=f"admin:{who.admin_id}", now=now)
    await record(conn, svc.settings, "account.deletion_scheduled", tenant_id=who.tenant_id,
                 admin_id=who.admin_id, client=client, detail={"due_at": due.isoformat()})
    await _tell_admins(conn, svc, who, _scheduled_email, due)
    return await lifecycle.deletion(registry, svc.settings, who.tenant_id)


async def cancel(conn: Any, svc: AuthServices, registry: Any, who: Principal, *,
                 client: Client) -> None:
    """Cancel the scheduled deletion (404 `deletion_not_scheduled` when there is none)."""
    await lifecycle.cancel_deletion(registry, svc.settings, who.tenant_id,
                                    actor=f"admin:{who.admin_id}")
    await record(conn, svc.settings, "account.deletion_canceled", tenant_id=who.tenant_id,
                 admin_id=who.admin_id, client=client)
    await _tell_admins(conn, svc, who, _canceled_email, None)


def _scheduled_email(to: str, due: datetime | None) -> Email:
    when = due.strftime("%Y-%m-%d %H:%M UTC") if due else "in 30 days"
    body = (
        "Your church's owner asked to delete its texting account.\n\n"
        f"On {when} every member, message, phone number and admin login of the church will be\n"
        "deleted for good and its subscription cancelled. Until then the owner can cancel the\n"
        "deletion in the account settings, and the church's data can still be exported.\n\n"
        "If nobody at your church asked for this, tell your church's account owner now.\n"
    )
    return Email(to, "Your church's account will be deleted", body, "deletion_scheduled")


def _canceled_email(to: str, _due: datetime | None) -> Email:
    body = ("The deletion of your church's texting account was cancelled. Nothing was "
            "deleted.\n")
    return Email(to, "Account deletion cancelled", body, "deletion_canceled")


async def _tell_admins(conn: Any, svc: AuthServices, who: Principal, make: Any,
                       due: datetime | None) -> None:
    """Email every active admin (a failure is logged: the change stands, the audit log has it)."""
    admins = await tq(svc.settings.sql_dir).list_admins(conn)
    for admin in admins:
        if admin["status"] != "active":
            continue
        try:
            async with asyncio.timeout(NOTIFY_TIMEOUT_S):
                await svc.emails.send(make(admin["email"], due))
        except Exception as exc:
            log.error("email_send_failed", kind="deletion", tenant_id=str(who.tenant_id),
                      error=type(exc).__name__)
