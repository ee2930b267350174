"""TOTP enrolment and its management: setup, enable (proves one code), disable, new codes.

Setup, enable and disable need the current password (a stolen session alone must not be able to
put the thief's authenticator on the account). Turning MFA on or off revokes the admin's other
sessions, moves `tokens_valid_after` and emails the admin. Regenerating recovery codes needs a
current TOTP code.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from ..sqlq import tenant as tq
from . import mfa
from .audit import record
from .emails import mfa_changed_email
from .errors import (
    InvalidMfaCode,
    InvalidPasswordOrCode,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    MfaNotSetUp,
)
from .login import CodeRejected, check_second_factor, mfa_transaction, raise_if_locked
from .state import AuthServices, Client, Principal
from .stepup import prove_password
from .tokens import keyed_hash

log = structlog.get_logger("ywm.mfa")

NOTIFY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Enrolment:
    """A pending TOTP secret, shown once for the authenticator app."""

    secret: str
    otpauth_uri: str


async def setup(conn: Any, svc: AuthServices, registry: Any, who: Principal, *, password: str,
                client: Client) -> Enrolment:
    """Store a new, not yet enabled secret (encrypted) and return it with its URI; needs the
    current password (throttled like a login)."""
    admin = await prove_password(conn, svc, registry, who, password=password, client=client,
                                 failed_action="mfa.setup_failed")
    secret = mfa.new_secret()
    sealed = svc.box.seal(secret, f"totp:{who.admin_id}")
    if not await tq(svc.settings.sql_dir).start_mfa_setup(conn, who.admin_id, sealed):
        raise MfaAlreadyEnabled()
    return Enrolment(secret, mfa.otpauth_uri(secret, admin["email"]))


async def _new_codes(conn: Any, svc: AuthServices, admin_id: uuid.UUID) -> list[str]:
    q = tq(svc.settings.sql_dir)
    codes = mfa.new_recovery_codes()
    hashes = [keyed_hash(svc.recovery_key, mfa.clean_code(c)) for c in codes]
    await q.delete_recovery_codes(conn, admin_id)
    await q.insert_recovery_codes(conn, admin_id, hashes)
    return codes


async def enable(conn: Any, svc: AuthServices, registry: Any, who: Principal, *, code: str,
                 password: str, client: Client) -> list[str]:
    """Turn MFA on with the current password and a first valid code; returns the recovery
    codes (shown once). Other sessions end and older tokens are refused."""
    q = tq(svc.settings.sql_dir)
    tid = who.tenant_id
    admin = await prove_password(conn, svc, registry, who, password=password, client=client,
                                 failed_action="mfa.enable_failed")
    async with mfa_transaction(conn, svc, tenant_id=tid, client=client):
        row = await q.lock_mfa(conn, who.admin_id)
        if row is None:
            raise MfaNotSetUp()
        if row["enabled"]:
            raise MfaAlreadyEnabled()
        raise_if_locked(row)
        secret = svc.box.open(bytes(row["totp_secret_encrypted"]), f"totp:{who.admin_id}")
        step = mfa.match_step(secret, mfa.clean_code(code), now=time.time(), last_step=None)
        if step is None:
            raise CodeRejected(who.admin_id)
        await q.enable_mfa(conn, who.admin_id, step)
        codes = await _new_codes(conn, svc, who.admin_id)
        await _ended_other_sessions(conn, svc, who)
        await record(conn, svc.settings, "mfa.enabled", tenant_id=tid, admin_id=who.admin_id,
                     client=client)
    await _notify(svc, admin["email"], who, enabled=True)
    return codes


async def disable(conn: Any, svc: AuthServices, registry: Any, who: Principal, *,
                  password: str, code: str, client: Client) -> None:
    """Turn MFA off; needs the password (throttled like a login) and a current code (TOTP or
    recovery). A wrong password and a wrong code get the same 403."""
    q = tq(svc.settings.sql_dir)
    state = await q.lock_mfa(conn, who.admin_id)  # outside a transaction: a plain read
    if state is None or not state["enabled"]:
        raise MfaNotEnabled()
    raise_if_locked(state)  # before the password, so a lock says nothing about it
    admin = await prove_password(conn, svc, registry, who, password=password, client=client,
                                 failed_action="mfa.disable_failed",
                                 error=InvalidPasswordOrCode())
    try:
        async with mfa_transaction(conn, svc, tenant_id=who.tenant_id, client=client):
            await check_second_factor(conn, svc, tenant_id=who.tenant_id,
                                      admin_id=who.admin_id, code=code, client=client)
            await q.delete_mfa(conn, who.admin_id)
            await q.delete_recovery_codes(conn, who.admin_id)
            await _ended_other_sessions(conn, svc, who)
            await record(conn, svc.settings, "mfa.disabled", tenant_id=who.tenant_id,
                         admin_id=who.admin_id, client=client)
    except InvalidMfaCode:
        raise InvalidPasswordOrCode() from None
    await _notify(svc, admin["email"], who, enabled=False)


async def _ended_other_sessions(conn: Any, svc: AuthServices, who: Principal) -> None:
    """MFA changed: revoke the admin's other sessions and refuse every older token (access and
    pending MFA tokens; this session goes on through its refresh token)."""
    q = tq(svc.settings.sql_dir)
    await q.revoke_admin_sessions(conn, who.admin_id, "mfa_changed", who.session_id)
    await q.invalidate_admin_tokens(conn, who.admin_id)
    await svc.revocations.admin(who.tenant_id, who.admin_id,
                                await q.admin_valid_after(conn, who.admin_id))


async def _notify(svc: AuthServices, to: str, who: Principal, *, enabled: bool) -> None:
    """Tell the admin by email (a thief turning MFA on or off should not go unnoticed)."""
    try:
        async with asyncio.timeout(NOTIFY_TIMEOUT_S):
            await svc.emails.send(mfa_changed_email(to, enabled=enabled))
    except Exception as exc:  # the change stands; the audit log has it
        log.error("email_send_failed", kind="mfa_changed", tenant_id=str(who.tenant_id),
                  error=type(exc).__name__)


async def regenerate_codes(conn: Any, svc: AuthServices, who: Principal, *, code: str,
                           client: Client) -> list[str]:
    """A new set of recovery codes (the old set stops working); needs a current TOTP code."""
    q = tq(svc.settings.sql_dir)
    mfa_row = await q.get_admin_for_login(conn, who.admin_id)
    if mfa_row is None or not mfa_row["mfa_enabled"]:
        raise MfaNotEnabled()
    async with mfa_transaction(conn, svc, tenant_id=who.tenant_id, client=client):
        await check_second_factor(conn, svc, tenant_id=who.tenant_id, admin_id=who.admin_id,
                                  code=code, client=client, allow_recovery=False)
        codes = await _new_codes(conn, svc, who.admin_id)
        await record(conn, svc.settings, "mfa.recovery_codes_regenerated",
                     tenant_id=who.tenant_id, admin_id=who.admin_id, client=client)
    return codes
