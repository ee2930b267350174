"""Login: email → registry → tenant → argon2id, throttled in the registry; then the MFA step.

An unknown email, an admin who is not active, a suspended church and a wrong password take the
same path: one argon2id verification (a dummy hash when there is no real one), one failure
counted on the email and the address, and the same 401. The attempt is counted *before* the
hash (see throttle.py), so concurrent guesses cannot outrun the lock, and decided right after
it (concurrent logins waiting on it go on). A suspended church is named (423) only to someone
who gave the right password, and its owners sign in all the same: they may still pay, export
and delete the account (routes.WHILE_SUSPENDED; every other route answers 423).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import TenantSuspended
from ..sqlq import registry as rq
from ..sqlq import tenant as tq
from . import mfa
from .audit import record, security_log
from .errors import InvalidCredentials, InvalidMfaCode, InvalidMfaToken, MfaLocked
from .sessions import Issued, Leaser, open_session
from .state import AuthServices, Client
from .suspended import suspended_admin
from .throttle import Attempt, email_key, ip_key
from .tokens import keyed_hash

MFA_MAX_FAILURES = 5
MFA_LOCK_S = 900.0


@dataclass(frozen=True)
class MfaChallenge:
    """Password proven; a second factor is needed."""

    mfa_token: str


async def login(svc: AuthServices, registry: Any, lease: Leaser, *, email: str, password: str,
                client: Client) -> Issued | MfaChallenge:
    """Check the password (throttled); tokens, or an MFA challenge when MFA is on."""
    attempt = await svc.throttle.reserve(registry, [email_key(email), ip_key(client.ip)])
    try:
        found, admin = await _find(svc, registry, lease, email)
        stored = admin["password_hash"] if admin is not None and admin["status"] == "active" \
            else None
        ok = await svc.passwords.verify(stored, password)
    except BaseException:
        await svc.throttle.release(registry, attempt)  # the password was never checked
        raise
    if not ok or admin is None:
        await svc.throttle.failed(registry, attempt)
        await _failed(svc, lease, attempt, found if admin is not None else None, client)
        raise InvalidCredentials()
    # Only now, after a right password: a suspended church is named (423) to its co-admins;
    # its owners sign in, to pay, export or delete (every other route answers 423).
    if found["tenant_status"] != "active" and (found["tenant_status"] != "suspended"
                                               or admin["role"] != "owner"):
        await svc.throttle.release(registry, attempt)
        raise TenantSuspended()
    await svc.throttle.succeeded(registry, attempt)
    return await _signed_in(svc, lease, found["tenant_id"], admin, stored or "", password, client)


async def _find(svc: AuthServices, registry: Any, lease: Leaser,
                email: str) -> tuple[Any, Any]:
    """The registry row of an email and the admin's login row (None when there is none)."""
    found = await rq(svc.settings.sql_dir).find_admin_login(registry, email)
    if found is None:
        return None, None
    if found["tenant_status"] == "suspended":
        return found, await suspended_admin(svc, registry, found["tenant_id"], found["admin_id"])
    if found["tenant_status"] != "active":
        return found, None
    async with lease(found["tenant_id"]) as conn:
        return found, await tq(svc.settings.sql_dir).get_admin_for_login(conn, found["admin_id"])


async def _signed_in(svc: AuthServices, lease: Leaser, tid: uuid.UUID, admin: Any, stored: str,
                     password: str, client: Client) -> Issued | MfaChallenge:
    """After a right password: rehash if due, then the MFA challenge or a new session."""
    rehash = await svc.passwords.hash(password) if svc.passwords.needs_rehash(stored) else None
    admin_id = admin["id"]
    async with lease(tid) as conn:
        if rehash is not None:
            await tq(svc.settings.sql_dir).set_password_hash(conn, admin_id, rehash)
        if admin["mfa_enabled"]:
            await record(conn, svc.settings, "auth.login_password_ok", tenant_id=tid,
                         admin_id=admin_id, client=client, detail={"mfa": "pending"})
            return MfaChallenge(svc.tokens.issue_mfa(admin_id=admin_id, tenant_id=tid,
                                                     valid_after=admin["valid_after_us"]))
        async with conn.transaction():
            issued = await open_session(conn, svc, tenant_id=tid, admin_id=admin_id,
                                        role=admin["role"], client=client)
            await record(conn, svc.settings, "auth.login", tenant_id=tid, admin_id=admin_id,
                         client=client, detail={"session_id": str(issued.claims.session_id)})
    return issued


async def _failed(svc: AuthServices, lease: Leaser, attempt: Attempt, found: Any,
                  client: Client) -> None:
    """The failure is already counted (reserved): audit it in the tenant when the admin exists
    and the church is active; raise the lock's 429 if this failure set it."""
    action = "auth.login_locked" if attempt.lock else "auth.login_failed"
    if found is None or found["tenant_status"] != "active":
        security_log(action, tenant_id=found["tenant_id"] if found else None,
                     admin_id=found["admin_id"] if found else None, client=client)
    else:
        async with lease(found["tenant_id"]) as conn:
            await record(conn, svc.settings, action, tenant_id=found["tenant_id"],
                         admin_id=found["admin_id"], client=client)
    if attempt.lock is not None:
        raise attempt.lock.error()


async def verify_mfa(svc: AuthServices, lease: Leaser, *, mfa_token: str, code: str,
                     client: Client) -> Issued:
    """Second step of a login: a TOTP or recovery code with the MFA token → tokens."""
    claims = svc.tokens.verify_mfa(mfa_token)
    tid = claims.tenant_id
    async with lease(tid) as conn:
        admin = await tq(svc.settings.sql_dir).get_admin_for_login(conn, claims.admin_id)
        if (admin is None or admin["status"] != "active" or not admin["mfa_enabled"]
                or admin["valid_after_us"] != claims.valid_after):  # issued before a change
            raise InvalidMfaToken()
        async with mfa_transaction(conn, svc, tenant_id=tid, client=client):
            kind = await check_second_factor(conn, svc, tenant_id=tid, admin_id=claims.admin_id,
                                             code=code, client=client,
                                             single_use_jti=(claims.jti, claims.exp))
            issued = await open_session(conn, svc, tenant_id=tid, admin_id=claims.admin_id,
                                        role=admin["role"], client=client)
            await record(conn, svc.settings, "auth.login", tenant_id=tid,
                         admin_id=claims.admin_id, client=client,
                         detail={"mfa": kind, "session_id": str(issued.claims.session_id)})
    return issued


class CodeRejected(Exception):
    """A wrong code inside an `mfa_transaction` (which counts it after the rollback)."""

    def __init__(self, admin_id: uuid.UUID) -> None:
        super().__init__("wrong MFA code")
        self.admin_id = admin_id


@asynccontextmanager
async def mfa_transaction(conn: Any, svc: AuthServices, *, tenant_id: uuid.UUID,
                          client: Client) -> AsyncIterator[None]:
    """A transaction around a code check: a wrong code rolls the work back, and only then is
    the failure counted (so the count survives) and turned into 400 or 429."""
    try:
        async with conn.transaction():
            yield
    except CodeRejected as exc:
        row = await tq(svc.settings.sql_dir).record_mfa_failure(conn, exc.admin_id,
                                                                MFA_MAX_FAILURES, MFA_LOCK_S)
        locked = bool(row and row["locked"])
        await record(conn, svc.settings, "mfa.locked" if locked else "mfa.code_rejected",
                     tenant_id=tenant_id, admin_id=exc.admin_id, client=client)
        if locked:
            raise MfaLocked(headers={"Retry-After": str(int(MFA_LOCK_S))}) from None
        raise InvalidMfaCode() from None


def raise_if_locked(row: Any) -> None:
    """429 `mfa_locked` while an admin's MFA row is locked."""
    if row["locked_until"] is not None and row["locked_until"] > row["now"]:
        wait = int((row["locked_until"] - row["now"]).total_seconds()) + 1
        raise MfaLocked(headers={"Retry-After": str(wait)})


async def check_second_factor(conn: Any, svc: AuthServices, *, tenant_id: uuid.UUID,
                              admin_id: uuid.UUID, code: str, client: Client,
                              allow_recovery: bool = True,
                              single_use_jti: tuple[str, int] | None = None) -> str:
    """`totp` or `recovery` when `code` is good for an enabled MFA, else CodeRejected.

    Run it inside `mfa_transaction`. A TOTP step at or below the last accepted one is refused
    (replay); a recovery code is spent; `single_use_jti` (an MFA token) is denied for reuse.
    """
    q = tq(svc.settings.sql_dir)
    row = await q.lock_mfa(conn, admin_id)
    if row is None or not row["enabled"]:
        raise InvalidMfaCode()
    raise_if_locked(row)
    kind = await _try_code(conn, svc, row, code, allow_recovery)
    if kind is None:
        raise CodeRejected(admin_id)
    if single_use_jti is not None and not await q.deny_jti(conn, single_use_jti[0],
                                                           float(single_use_jti[1])):
        raise InvalidMfaToken()
    if kind == "recovery":
        await record(conn, svc.settings, "mfa.recovery_code_used", tenant_id=tenant_id,
                     admin_id=admin_id, client=client)
    return kind


async def _try_code(conn: Any, svc: AuthServices, row: Any, code: str,
                    allow_recovery: bool) -> str | None:
    q = tq(svc.settings.sql_dir)
    admin_id = row["admin_id"]
    cleaned = mfa.clean_code(code)
    if mfa.looks_like_totp(cleaned):
        secret = svc.box.open(bytes(row["totp_secret_encrypted"]), f"totp:{admin_id}")
        step = mfa.match_step(secret, cleaned, now=time.time(), last_step=row["last_used_step"])
        if step is not None and await q.accept_totp_step(conn, admin_id, step):
            return "totp"
        return None
    normalized = mfa.normalize_recovery_code(code) if allow_recovery else None
    if normalized and await q.use_recovery_code(conn, admin_id,
                                                keyed_hash(svc.recovery_key, normalized)):
        await q.clear_mfa_failures(conn, admin_id)
        return "recovery"
    return None
