"""TOTP enrolment and its management: setup, enable (proves one code), disable, new codes.

Turning MFA on or off, and regenerating recovery codes, revoke the admin's other sessions.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..sqlq import tenant as tq
from . import mfa
from .audit import record
from .errors import InvalidCurrentPassword, MfaAlreadyEnabled, MfaNotEnabled, MfaNotSetUp
from .login import CodeRejected, check_second_factor, mfa_transaction, raise_if_locked
from .state import AuthServices, Client, Principal
from .tokens import keyed_hash


@dataclass(frozen=True)
class Enrolment:
    """A pending TOTP secret, shown once for the authenticator app."""

    secret: str
    otpauth_uri: str


async def setup(conn: Any, svc: AuthServices, who: Principal) -> Enrolment:
    """Store a new, not yet enabled secret (encrypted) and return it with its URI."""
    q = tq(svc.settings.sql_dir)
    profile = await q.get_admin_profile(conn, who.admin_id)
    secret = mfa.new_secret()
    sealed = svc.box.seal(secret, f"totp:{who.admin_id}")
    if not await q.start_mfa_setup(conn, who.admin_id, sealed):
        raise MfaAlreadyEnabled()
    return Enrolment(secret, mfa.otpauth_uri(secret, profile["email"]))


async def _new_codes(conn: Any, svc: AuthServices, admin_id: uuid.UUID) -> list[str]:
    q = tq(svc.settings.sql_dir)
    codes = mfa.new_recovery_codes()
    hashes = [keyed_hash(svc.recovery_key, mfa.clean_code(c)) for c in codes]
    await q.delete_recovery_codes(conn, admin_id)
    await q.insert_recovery_codes(conn, admin_id, hashes)
    return codes


async def enable(conn: Any, svc: AuthServices, who: Principal, *, code: str,
                 client: Client) -> list[str]:
    """Turn MFA on with a first valid code; returns the recovery codes (shown once)."""
    q = tq(svc.settings.sql_dir)
    tid = who.tenant_id
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
        await q.revoke_admin_sessions(conn, who.admin_id, "mfa_changed", who.session_id)
        await record(conn, svc.settings, "mfa.enabled", tenant_id=tid, admin_id=who.admin_id,
                     client=client)
    return codes


async def disable(conn: Any, svc: AuthServices, who: Principal, *, password: str, code: str,
                  client: Client) -> None:
    """Turn MFA off; needs the password and a current code (TOTP or recovery)."""
    q = tq(svc.settings.sql_dir)
    stored = await q.get_password_hash(conn, who.admin_id)
    if not await svc.passwords.verify(stored, password):
        raise InvalidCurrentPassword(field="password")
    mfa_row = await q.get_admin_for_login(conn, who.admin_id)
    if mfa_row is None or not mfa_row["mfa_enabled"]:
        raise MfaNotEnabled()
    async with mfa_transaction(conn, svc, tenant_id=who.tenant_id, client=client):
        await check_second_factor(conn, svc, tenant_id=who.tenant_id, admin_id=who.admin_id,
                                  code=code, client=client)
        await q.delete_mfa(conn, who.admin_id)
        await q.delete_recovery_codes(conn, who.admin_id)
        await q.revoke_admin_sessions(conn, who.admin_id, "mfa_changed", who.session_id)
        await record(conn, svc.settings, "mfa.disabled", tenant_id=who.tenant_id,
                     admin_id=who.admin_id, client=client)


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
